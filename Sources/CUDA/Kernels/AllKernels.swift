/// Every kernel source of the CUDA engine: what CI compiles with NVRTC (a kernel that does
/// not compile fails CI, GPU or not) and what a GPU run compiles at first use.
public enum AllKernels {
    public static let sources: [KernelSource] = [
        ElementwiseKernels.source, OptimizerKernels.source, BatchNormKernels.source, DataKernels.source,
        ConvolutionKernels.source, LossKernels.source, AugmentKernels.source, ConditioningKernels.source,
        ImageKernels.source, SpectralKernels.source,
    ]
}
