/// Element-wise kernels: activations forward and backward side by side, as in the CPU layers
/// (`Engine/Layers/Activations.swift`). Grid-stride loops, so any launch size covers any n.
public enum ElementwiseKernels {
    public static let source = KernelSource(name: "elementwise.cu", code: #"""
    #define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

    extern "C" __global__ void leaky_relu_forward(const float* x, float* y, long n, float slope) {
        GRID_STRIDE(i, n) { float v = x[i]; y[i] = v > 0.f ? v : slope * v; }
    }

    // y = LeakyReLU(x + bias[channel]): a convolution's bias and the activation after it in one
    // pass. Each channel is runs of hw values, c channels in turn (hw = H*W image by image,
    // B*H*W channel-major). y has the sign of x + bias, so the backward pass reads y.
    extern "C" __global__ void leaky_relu_bias_forward(const float* x, const float* bias, float* y, int c, int hw, long n,
                                                       float slope) {
        const unsigned count = (unsigned)n, area = (unsigned)hw, channels = (unsigned)c;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
            float v = x[i] + bias[(i / area) % channels];
            y[i] = v > 0.f ? v : slope * v;
        }
    }

    // dx = dy where the input was positive, slope * dy elsewhere (the CPU layer's rule at 0).
    extern "C" __global__ void leaky_relu_backward(const float* x, const float* dy, float* dx, long n, float slope) {
        GRID_STRIDE(i, n) { dx[i] = x[i] > 0.f ? dy[i] : slope * dy[i]; }
    }

    extern "C" __global__ void relu_forward(const float* x, float* y, long n) {
        GRID_STRIDE(i, n) { y[i] = fmaxf(x[i], 0.f); }
    }

    extern "C" __global__ void relu_backward(const float* x, const float* dy, float* dx, long n) {
        GRID_STRIDE(i, n) { dx[i] = x[i] > 0.f ? dy[i] : 0.f; }
    }

    extern "C" __global__ void tanh_forward(const float* x, float* y, long n) {
        GRID_STRIDE(i, n) { y[i] = tanhf(x[i]); }
    }

    // From the output: d tanh(x)/dx = 1 - tanh(x)^2.
    extern "C" __global__ void tanh_backward(const float* y, const float* dy, float* dx, long n) {
        GRID_STRIDE(i, n) { float t = y[i]; dx[i] = dy[i] * (1.f - t * t); }
    }

    extern "C" __global__ void fill(float* x, long n, float value) {
        GRID_STRIDE(i, n) { x[i] = value; }
    }

    // y += a * x
    extern "C" __global__ void axpy(float a, const float* x, float* y, long n) {
        GRID_STRIDE(i, n) { y[i] += a * x[i]; }
    }
    """#, functions: ["leaky_relu_forward", "leaky_relu_bias_forward", "leaky_relu_backward", "relu_forward", "relu_backward", "tanh_forward",
                      "tanh_backward", "fill", "axpy"])
}
