/// cuBLAS, loaded at run time, for the matrix products of the CUDA engine.
public final class CUBLASLibrary: @unchecked Sendable {
    private let library: DynamicLibrary
    public var libraryPath: String { library.path }

    typealias Handle = OpaquePointer?
    let create: @convention(c) (UnsafeMutablePointer<Handle>) -> Int32
    let destroy: @convention(c) (Handle) -> Int32
    let setStream: @convention(c) (Handle, OpaquePointer?) -> Int32
    /// cublasSetMathMode: CUBLAS_TF32_TENSOR_OP_MATH (3) lets FP32 products use TF32 tensor cores.
    let setMathMode: @convention(c) (Handle, Int32) -> Int32
    /// cublasSetWorkspace_v2: a workspace of ours, so that no allocation happens inside a graph capture.
    let setWorkspace: @convention(c) (Handle, UInt64, Int) -> Int32
    /// Column-major C = alpha op(A) op(B) + beta C, pointers in device memory.
    let sgemm: @convention(c) (Handle, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>, UInt64, Int32,
                               UInt64, Int32, UnsafePointer<Float>, UInt64, Int32) -> Int32
    let sgemmStridedBatched: @convention(c) (Handle, Int32, Int32, Int32, Int32, Int32, UnsafePointer<Float>, UInt64, Int32, Int,
                                             UInt64, Int32, Int, UnsafePointer<Float>, UInt64, Int32, Int, Int32) -> Int32

    /// cublasGemmEx and cublasGemmStridedBatchedEx, for products whose compute type is not the
    /// handle's math mode (bfloat16 tensor cores on FP32 operands): the same arguments as
    /// sgemm's with each matrix's data type after it, then the compute type and the algorithm.
    let gemmEx: @convention(c) (Handle, Int32, Int32, Int32, Int32, Int32, UnsafeRawPointer, UInt64, Int32, Int32,
                                UInt64, Int32, Int32, UnsafeRawPointer, UInt64, Int32, Int32, Int32, Int32) -> Int32
    let gemmStridedBatchedEx: @convention(c) (Handle, Int32, Int32, Int32, Int32, Int32, UnsafeRawPointer, UInt64, Int32, Int32, Int,
                                              UInt64, Int32, Int32, Int, UnsafeRawPointer, UInt64, Int32, Int32, Int, Int32,
                                              Int32, Int32) -> Int32
    /// cudaDataType CUDA_R_32F, cublasComputeType_t CUBLAS_COMPUTE_32F_FAST_16BF, cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT.
    static let float32Data: Int32 = 0, computeFast16BF: Int32 = 75, defaultAlgorithm: Int32 = -1

    static let names = ["libcublas.so.13", "libcublas.so.12", "libcublas.so"]

    public init(search: CUDALibrarySearch = CUDALibrarySearch()) throws(CUDAError) {
        library = try DynamicLibrary(search.candidates(Self.names), what: "cuBLAS (libcublas.so)")
        create = try library.function("cublasCreate_v2", as: type(of: create))
        destroy = try library.function("cublasDestroy_v2", as: type(of: destroy))
        setStream = try library.function("cublasSetStream_v2", as: type(of: setStream))
        setMathMode = try library.function("cublasSetMathMode", as: type(of: setMathMode))
        setWorkspace = try library.function("cublasSetWorkspace_v2", as: type(of: setWorkspace))
        sgemm = try library.function("cublasSgemm_v2", as: type(of: sgemm))
        sgemmStridedBatched = try library.function("cublasSgemmStridedBatched", as: type(of: sgemmStridedBatched))
        gemmEx = try library.function("cublasGemmEx", as: type(of: gemmEx))
        gemmStridedBatchedEx = try library.function("cublasGemmStridedBatchedEx", as: type(of: gemmStridedBatchedEx))
    }
}
