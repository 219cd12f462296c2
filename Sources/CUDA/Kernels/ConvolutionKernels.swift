/// im2col and col2im for Conv2d and ConvTranspose2d (`Engine/Core/Im2col.swift`): the same
/// column layout, so that one cuBLAS GEMM per convolution replaces the CPU's OpenBLAS one.
///
/// cols is (C*KH*KW, B*GH*GW): row (c, kh, kw), column (b, gh, gw); the image is (B, C, H, W).
/// For Conv2d the image is the input and the grid the output; for ConvTranspose2d the roles
/// swap (see `ConvGeometry`). col2im gathers (each image pixel sums the column entries that
/// read it) rather than scattering with atomics: deterministic, so a replayed CUDA graph gives
/// the same bits as the step it captured.
public enum ConvolutionKernels {
    public static let source = KernelSource(name: "convolution.cu", code: #"""
    #define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

    struct Geometry {
        int batch, channels, height, width, kh, kw, stride, padding, gh, gw;
    };

    extern "C" __global__ void im2col(const float* image, float* cols, Geometry g) {
        const long gridArea = (long)g.gh * g.gw, columns = g.batch * gridArea;
        const long n = (long)g.channels * g.kh * g.kw * columns;
        GRID_STRIDE(i, n) {
            long row = i / columns, column = i % columns;
            int c = row / (g.kh * g.kw), k = row % (g.kh * g.kw), kh = k / g.kw, kw = k % g.kw;
            int b = column / gridArea, cell = column % gridArea, gh = cell / g.gw, gw = cell % g.gw;
            int h = gh * g.stride + kh - g.padding, w = gw * g.stride + kw - g.padding;
            cols[i] = (h >= 0 && h < g.height && w >= 0 && w < g.width)
                ? image[(((long)b * g.channels + c) * g.height + h) * g.width + w] : 0.f;
        }
    }

    // image[b, c, h, w] = sum over (kh, kw) with gh * stride + kh - padding = h (and the same
    // for w) of cols[(c, kh, kw), (b, gh, gw)]. Overwrites the image.
    extern "C" __global__ void col2im(const float* cols, float* image, Geometry g) {
        const long gridArea = (long)g.gh * g.gw, columns = g.batch * gridArea;
        const long n = (long)g.batch * g.channels * g.height * g.width;
        GRID_STRIDE(i, n) {
            int w = i % g.width, h = (i / g.width) % g.height;
            int c = (i / ((long)g.width * g.height)) % g.channels, b = i / ((long)g.width * g.height * g.channels);
            float sum = 0.f;
            for (int kh = 0; kh < g.kh; kh++) {
                int y = h + g.padding - kh;
                if (y < 0 || y % g.stride != 0 || y / g.stride >= g.gh) continue;
                for (int kw = 0; kw < g.kw; kw++) {
                    int x = w + g.padding - kw;
                    if (x < 0 || x % g.stride != 0 || x / g.stride >= g.gw) continue;
                    long row = ((long)c * g.kh + kh) * g.kw + kw;
                    sum += cols[row * columns + b * gridArea + (y / g.stride) * g.gw + x / g.stride];
                }
            }
            image[i] = sum;
        }
    }

    // y[b, c, s] += bias[c] over (B, C, S) (S = H*W; 1 for a Linear layer's (B, F) output).
    extern "C" __global__ void add_channel_bias(float* y, const float* bias, long batch, int channels, long spatial) {
        const long n = batch * channels * spatial;
        GRID_STRIDE(i, n) { y[i] += bias[(i / spatial) % channels]; }
    }

    // db[c] += sum over b and s of dy[b, c, s] (gradients add, as the CPU layers' do): one block
    // per channel, a tree in shared memory (a fixed order: the same sum every time).
    extern "C" __global__ void channel_bias_gradient(const float* dy, float* db, long batch, int channels, long spatial) {
        __shared__ float partial[256];
        const int c = blockIdx.x;
        float sum = 0.f;
        for (long j = threadIdx.x; j < batch * spatial; j += blockDim.x) {
            long b = j / spatial, s = j % spatial;
            sum += dy[(b * channels + c) * spatial + s];
        }
        partial[threadIdx.x] = sum;
        __syncthreads();
        for (int width = blockDim.x / 2; width > 0; width /= 2) {
            if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
            __syncthreads();
        }
        if (threadIdx.x == 0) db[c] += partial[0];
    }

    // dst (B, A, S) = src (A, B, S), as `swapLeadingAxes` in Engine/Core/Im2col.swift: NCHW
    // activations to the channel-major (C, N, H*W) matrices whose one GEMM sums a weight's
    // gradient over the batch, and back. One thread per destination element (coalesced writes).
    extern "C" __global__ void swap_leading_axes(const float* src, float* dst, long a, long b, long inner) {
        const long n = a * b * inner;
        GRID_STRIDE(i, n) {
            long s = i % inner, rest = i / inner, j = rest % a, k = rest / a;
            dst[i] = src[(j * b + k) * inner + s];
        }
    }
    """#, functions: ["im2col", "col2im", "add_channel_bias", "channel_bias_gradient", "swap_leading_axes"])

    /// `channel_bias_gradient` reduces with this many threads per block (a power of two).
    public static let reductionBlock = 256
}
