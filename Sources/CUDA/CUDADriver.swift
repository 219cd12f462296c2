#if canImport(Glibc)
import Glibc
#endif

/// What a GPU is, as the driver reports it.
public struct CUDADeviceInfo: Sendable, Equatable {
    public let ordinal: Int
    public let name: String
    /// Compute capability as XY (9.0 -> 90): the `sm_XY` kernels are compiled for.
    public let architecture: Int
    public let totalMemory: Int
    public let multiprocessors: Int
}

/// The CUDA driver API (`libcuda.so.1`), loaded at run time. Declares only the calls synthd
/// makes; every failing call becomes a `CUDAError` naming it.
public final class CUDADriver: @unchecked Sendable {
    private let library: DynamicLibrary
    public var libraryPath: String { library.path }
    /// The driver's CUDA version as XY00 + Z0 (13000 for CUDA 13.0).
    public let version: Int

    typealias Device = Int32
    public typealias DevicePointer = UInt64

    private let getErrorString: @convention(c) (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32
    private let deviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    private let deviceGet: @convention(c) (UnsafeMutablePointer<Device>, Int32) -> Int32
    private let deviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Device) -> Int32
    private let deviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Device) -> Int32
    private let deviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Device) -> Int32
    let primaryContextRetain: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, Device) -> Int32
    let primaryContextRelease: @convention(c) (Device) -> Int32
    let contextSetCurrent: @convention(c) (OpaquePointer?) -> Int32
    let contextSynchronize: @convention(c) () -> Int32
    let memoryAllocate: @convention(c) (UnsafeMutablePointer<DevicePointer>, Int) -> Int32
    let memoryFree: @convention(c) (DevicePointer) -> Int32
    let memoryInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> Int32
    let copyHostToDevice: @convention(c) (DevicePointer, UnsafeRawPointer, Int) -> Int32
    let copyDeviceToHost: @convention(c) (UnsafeMutableRawPointer, DevicePointer, Int) -> Int32
    let copyHostToDeviceAsync: @convention(c) (DevicePointer, UnsafeRawPointer, Int, OpaquePointer?) -> Int32
    let copyDeviceToHostAsync: @convention(c) (UnsafeMutableRawPointer, DevicePointer, Int, OpaquePointer?) -> Int32
    let moduleLoadData: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafeRawPointer) -> Int32
    let moduleUnload: @convention(c) (OpaquePointer?) -> Int32
    let moduleGetFunction: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UnsafePointer<CChar>) -> Int32
    let launchKernel: @convention(c) (OpaquePointer?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, OpaquePointer?,
                                      UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32

    // Streams and graphs: the training step is captured once and replayed as one launch.
    let streamCreate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UInt32) -> Int32
    let streamDestroy: @convention(c) (OpaquePointer?) -> Int32
    let streamSynchronize: @convention(c) (OpaquePointer?) -> Int32
    let streamBeginCapture: @convention(c) (OpaquePointer?, Int32) -> Int32
    let streamEndCapture: @convention(c) (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>) -> Int32
    let graphInstantiate: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, OpaquePointer?, UInt64) -> Int32
    let graphGetNodes: @convention(c) (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>?, UnsafeMutablePointer<Int>) -> Int32
    let graphLaunch: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32
    let graphExecDestroy: @convention(c) (OpaquePointer?) -> Int32
    let graphDestroy: @convention(c) (OpaquePointer?) -> Int32

    static let names = ["libcuda.so.1", "libcuda.so"]

    /// Loads the driver and initialises it. Throws `.libraryMissing` on a machine without the
    /// NVIDIA driver, `.driver` when it loads but cannot start (no kernel module, say).
    public init(search: CUDALibrarySearch = CUDALibrarySearch()) throws(CUDAError) {
        // The driver comes with the kernel module, never with a toolkit folder: loader path only.
        library = try DynamicLibrary(search.explicitFolders.flatMap { f in Self.names.map { f + "/" + $0 } } + Self.names,
                                     what: "the NVIDIA driver (libcuda.so.1)")
        getErrorString = try library.function("cuGetErrorString", as: type(of: getErrorString))
        deviceGetCount = try library.function("cuDeviceGetCount", as: type(of: deviceGetCount))
        deviceGet = try library.function("cuDeviceGet", as: type(of: deviceGet))
        deviceGetName = try library.function("cuDeviceGetName", as: type(of: deviceGetName))
        deviceGetAttribute = try library.function("cuDeviceGetAttribute", as: type(of: deviceGetAttribute))
        deviceTotalMem = try library.function("cuDeviceTotalMem_v2", as: type(of: deviceTotalMem))
        primaryContextRetain = try library.function("cuDevicePrimaryCtxRetain", as: type(of: primaryContextRetain))
        primaryContextRelease = try library.function("cuDevicePrimaryCtxRelease_v2", as: type(of: primaryContextRelease))
        contextSetCurrent = try library.function("cuCtxSetCurrent", as: type(of: contextSetCurrent))
        contextSynchronize = try library.function("cuCtxSynchronize", as: type(of: contextSynchronize))
        memoryAllocate = try library.function("cuMemAlloc_v2", as: type(of: memoryAllocate))
        memoryFree = try library.function("cuMemFree_v2", as: type(of: memoryFree))
        memoryInfo = try library.function("cuMemGetInfo_v2", as: type(of: memoryInfo))
        copyHostToDevice = try library.function("cuMemcpyHtoD_v2", as: type(of: copyHostToDevice))
        copyDeviceToHost = try library.function("cuMemcpyDtoH_v2", as: type(of: copyDeviceToHost))
        copyHostToDeviceAsync = try library.function("cuMemcpyHtoDAsync_v2", as: type(of: copyHostToDeviceAsync))
        copyDeviceToHostAsync = try library.function("cuMemcpyDtoHAsync_v2", as: type(of: copyDeviceToHostAsync))
        moduleLoadData = try library.function("cuModuleLoadData", as: type(of: moduleLoadData))
        moduleUnload = try library.function("cuModuleUnload", as: type(of: moduleUnload))
        moduleGetFunction = try library.function("cuModuleGetFunction", as: type(of: moduleGetFunction))
        launchKernel = try library.function("cuLaunchKernel", as: type(of: launchKernel))
        streamCreate = try library.function("cuStreamCreate", as: type(of: streamCreate))
        streamDestroy = try library.function("cuStreamDestroy_v2", as: type(of: streamDestroy))
        streamSynchronize = try library.function("cuStreamSynchronize", as: type(of: streamSynchronize))
        streamBeginCapture = try library.function("cuStreamBeginCapture_v2", as: type(of: streamBeginCapture))
        streamEndCapture = try library.function("cuStreamEndCapture", as: type(of: streamEndCapture))
        graphInstantiate = try library.function("cuGraphInstantiateWithFlags", as: type(of: graphInstantiate))
        graphGetNodes = try library.function("cuGraphGetNodes", as: type(of: graphGetNodes))
        graphLaunch = try library.function("cuGraphLaunch", as: type(of: graphLaunch))
        graphExecDestroy = try library.function("cuGraphExecDestroy", as: type(of: graphExecDestroy))
        graphDestroy = try library.function("cuGraphDestroy", as: type(of: graphDestroy))
        let initialise = try library.function("cuInit", as: (@convention(c) (UInt32) -> Int32).self)
        let driverVersion = try library.function("cuDriverGetVersion", as: (@convention(c) (UnsafeMutablePointer<Int32>) -> Int32).self)
        var version: Int32 = 0
        _ = driverVersion(&version)
        self.version = Int(version)
        try check("cuInit", initialise(0))
    }

    public var deviceCount: Int {
        var count: Int32 = 0
        return deviceGetCount(&count) == 0 ? Int(count) : 0
    }

    /// The GPU `ordinal` (as in `--device cuda:N`).
    public func device(_ ordinal: Int) throws(CUDAError) -> CUDADeviceInfo {
        let count = deviceCount
        guard ordinal >= 0, ordinal < count else { throw .noDevice(requested: ordinal, available: count) }
        var device: Device = 0
        try check("cuDeviceGet", deviceGet(&device, Int32(ordinal)))
        var name = [CChar](repeating: 0, count: 256)
        try check("cuDeviceGetName", deviceGetName(&name, 256, device))
        // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR, _MULTIPROCESSOR_COUNT.
        var major: Int32 = 0, minor: Int32 = 0, processors: Int32 = 0
        try check("cuDeviceGetAttribute", deviceGetAttribute(&major, 75, device))
        try check("cuDeviceGetAttribute", deviceGetAttribute(&minor, 76, device))
        try check("cuDeviceGetAttribute", deviceGetAttribute(&processors, 16, device))
        var memory = 0
        try check("cuDeviceTotalMem", deviceTotalMem(&memory, device))
        return CUDADeviceInfo(ordinal: ordinal, name: String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                              architecture: Int(major * 10 + minor), totalMemory: memory, multiprocessors: Int(processors))
    }

    func message(_ code: Int32) -> String {
        var text: UnsafePointer<CChar>?
        guard getErrorString(code, &text) == 0, let text else { return "CUDA error \(code)" }
        return String(cString: text)
    }

    func check(_ call: String, _ code: Int32) throws(CUDAError) {
        guard code == 0 else { throw .driver(call: call, code: code, message: message(code)) }
    }
}
