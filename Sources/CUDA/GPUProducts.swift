/// How a GPU's matrix products round their operands; all three sum in FP32.
public enum GPUProducts: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Plain FP32 (`--fp32`, `[service] gpu_products = "fp32"`).
    case float32 = "fp32"
    /// TF32 tensor cores: 10-bit mantissas in, as PyTorch allows with `allow_tf32` (the default).
    case tensorFloat32 = "tf32"
    /// bfloat16 tensor cores: 8-bit mantissas in (`--bf16`), cuBLAS's `CUBLAS_COMPUTE_32F_FAST_16BF`
    /// on the FP32 tensors as they are, twice TF32's peak on a Hopper; as the CPU's AMX tiles round.
    case bfloat16 = "bf16"

    public var description: String {
        switch self {
        case .float32: "FP32 products"
        case .tensorFloat32: "TF32 products"
        case .bfloat16: "bfloat16 products"
        }
    }
}
