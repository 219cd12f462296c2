/// Spectral normalisation on the GPU (`Engine/Layers/SpectralNormalization.swift`): the power
/// iteration's matrix-vector products and normalisations, sigma = u^T M v, the layer's weight
/// W / sigma, and the gradient dL/dW = (G - <G, W/sigma> row col^T) / sigma. The vectors are a
/// few hundred floats, so each reduction is one block; sigma and <G, W/sigma> stay in device
/// memory (a captured step reads nothing back).
public enum SpectralKernels {
    public static let source = KernelSource(name: "spectral.cu", code: #"""
    \#(KernelHelpers.blockSum)
    #define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

    // y = W x (W rows x columns, row-major; y has `rows` entries) or, with `transpose`, y = W^T x
    // (`columns` entries). One block per entry of y.
    extern "C" __global__ void sn_matvec(const float* w, const float* x, float* y, int rows, int columns, int transpose) {
        __shared__ float partial[256];
        const int out = blockIdx.x;
        const int inner = transpose ? rows : columns;
        float sum = 0.f;
        for (int k = threadIdx.x; k < inner; k += blockDim.x)
            sum += transpose ? w[(long)k * columns + out] * x[k] : w[(long)out * columns + k] * x[k];
        float total = block_sum(sum, partial);
        if (threadIdx.x == 0) y[out] = total;
    }

    // y = x / max(|x|, 1e-12) (y may be x). One block.
    extern "C" __global__ void sn_normalize(const float* x, float* y, int n) {
        __shared__ float partial[256];
        float sum = 0.f;
        for (int i = threadIdx.x; i < n; i += blockDim.x) sum += x[i] * x[i];
        float scale = 1.f / fmaxf(sqrtf(block_sum(sum, partial)), 1e-12f);
        for (int i = threadIdx.x; i < n; i += blockDim.x) y[i] = x[i] * scale;
    }

    // out[0] = max(<a, b>, floor) (sigma = u^T M v with floor 1e-12; with floor -inf, a plain
    // dot product: <G, W/sigma>). One block.
    extern "C" __global__ void sn_dot(const float* a, const float* b, float* out, long n, float floor) {
        __shared__ float partial[256];
        float sum = 0.f;
        for (long i = threadIdx.x; i < n; i += blockDim.x) sum += a[i] * b[i];
        float total = block_sum(sum, partial);
        if (threadIdx.x == 0) out[0] = fmaxf(total, floor);
    }

    // target = w / sigma.
    extern "C" __global__ void sn_scale(const float* w, float* target, const float* sigma, long n) {
        const float scale = 1.f / sigma[0];
        GRID_STRIDE(i, n) target[i] = w[i] * scale;
    }

    // dw[r, c] += (g[r, c] - along * row[r] * column[c]) / sigma, then g = 0 (the layer's
    // gradient is handed over). `along` = <G, W/sigma>.
    extern "C" __global__ void sn_gradient(float* g, float* dw, const float* row, const float* column, const float* along,
                                           const float* sigma, int rows, int columns) {
        const float scale = 1.f / sigma[0], a = along[0];
        GRID_STRIDE(i, (long)rows * columns) {
            int r = i / columns, c = i % columns;
            dw[i] += (g[i] - a * row[r] * column[c]) * scale;
            g[i] = 0.f;
        }
    }
    """#, functions: ["sn_matvec", "sn_normalize", "sn_dot", "sn_scale", "sn_gradient"])

    /// Threads of the one-block reductions (a power of two, at most 256).
    public static let block = 256
}
