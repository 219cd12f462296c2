/// im2col and col2im for Conv2d and ConvTranspose2d (`Engine/Core/Im2col.swift`): the same
/// column layout, so that one cuBLAS GEMM per convolution replaces the CPU's OpenBLAS one.
///
/// cols is (C*KH*KW, B*GH*GW): row (c, kh, kw), column (b, gh, gw); the image is (B, C, H, W),
/// stored image by image or, with `channel_major`, channel by channel ((C, B, H, W) in memory).
/// For Conv2d the image is the input and the grid the output; for ConvTranspose2d the roles
/// swap (see `ConvGeometry`). col2im gathers (each image pixel sums the column entries that
/// read it) rather than scattering with atomics: deterministic, so a replayed CUDA graph gives
/// the same bits as the step it captured.
public enum ConvolutionKernels {
    public static let source = KernelSource(name: "convolution.cu", code: #"""
    #define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

    \#(KernelHelpers.mapLayout)
    struct Geometry {
        int batch, channels, height, width, kh, kw, stride, padding, gh, gw, channel_major;
    };

    // Index arithmetic in 32 bits (the host checks that the counts fit): a 64-bit division is
    // a long software routine on the GPU, and these kernels divide several times per element.
    // One thread per (channel, grid cell), writing the cell's KH*KW taps: a warp's threads take
    // consecutive cells, so each tap's row is written coalesced, and the index arithmetic (three
    // divisions) is paid once per 16 values of a 4x4 kernel instead of six divisions per value.
    extern "C" __global__ void im2col(const float* image, float* cols, Geometry g) {
        const unsigned gridArea = g.gh * g.gw, columns = g.batch * gridArea, patch = g.kh * g.kw;
        const unsigned n = g.channels * columns;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
            unsigned c = i / columns, column = i - c * columns;
            unsigned b = column / gridArea, cell = column - b * gridArea, gh = cell / g.gw, gw = cell - gh * g.gw;
            const int top = (int)(gh * g.stride) - g.padding, left = (int)(gw * g.stride) - g.padding;
            const float* plane = image + plane_of(b, c, g.batch, g.channels, g.channel_major) * g.height * g.width;
            float* out = cols + (unsigned long long)(c * patch) * columns + column;
            for (int kh = 0; kh < g.kh; kh++) {
                const int h = top + kh;
                const bool row = h >= 0 && h < g.height;
                for (int kw = 0; kw < g.kw; kw++) {
                    const int w = left + kw;
                    out[(unsigned long long)(kh * g.kw + kw) * columns] = row && w >= 0 && w < g.width ? plane[h * g.width + w] : 0.f;
                }
            }
        }
    }

    // image[b, c, h, w] = sum over (kh, kw) with gh * stride + kh - padding = h (and the same
    // for w) of cols[(c, kh, kw), (b, gh, gw)]. Overwrites the image. Only the kh (kw) of the
    // right residue modulo the stride are visited (4 of a 4x4 kernel's 16 at stride 2), in
    // ascending order as before: the same sum, the same bits. bias (per image channel; may be
    // null) is added to each sum: a transposed convolution's forward pass in one kernel.
    extern "C" __global__ void col2im(const float* cols, float* image, Geometry g, const float* bias) {
        const unsigned gridArea = g.gh * g.gw, columns = g.batch * gridArea;
        const unsigned n = g.batch * g.channels * g.height * g.width;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
            unsigned rest = i / g.width, w = i - rest * g.width;
            unsigned planes = rest / g.height, h = rest - planes * g.height;
            unsigned b, c;  // i walks the image in its own layout
            plane_owner(planes, g.batch, g.channels, g.channel_major, b, c);
            const int y0 = (int)h + g.padding, x0 = (int)w + g.padding;
            // Stride 2 (every DCGAN layer) with shifts and masks: the general residues and
            // quotients are runtime divisions, four more per pixel.
            const bool two = g.stride == 2;
            float sum = 0.f;
            for (int kh = two ? (y0 & 1) : y0 % g.stride; kh < g.kh && kh <= y0; kh += g.stride) {
                int gy = two ? (y0 - kh) >> 1 : (y0 - kh) / g.stride;
                if (gy >= g.gh) continue;
                for (int kw = two ? (x0 & 1) : x0 % g.stride; kw < g.kw && kw <= x0; kw += g.stride) {
                    int gx = two ? (x0 - kw) >> 1 : (x0 - kw) / g.stride;
                    if (gx >= g.gw) continue;
                    unsigned row = (c * g.kh + kh) * g.kw + kw;
                    sum += cols[(unsigned long long)row * columns + b * gridArea + gy * g.gw + gx];
                }
            }
            image[i] = bias ? sum + bias[c] : sum;
        }
    }

    // y[b, c, s] += bias[c] over (B, C, S) (S = H*W; 1 for a Linear layer's (B, F) output).
    // 32-bit indices (the host checks the count).
    extern "C" __global__ void add_channel_bias(float* y, const float* bias, long batch, int channels, long spatial) {
        const unsigned n = (unsigned)(batch * channels * spatial), area = (unsigned)spatial;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
            y[i] += bias[(i / area) % (unsigned)channels];
        }
    }

    // db[c] += sum over b and s of dy[b, c, s] (gradients add, as the CPU layers' do). Block
    // (c, slice) of channels x slices sums one contiguous slice of the channel's B*S values, a
    // tree in shared memory (a fixed order: the same sum every time). With one slice it adds
    // to db at once; with more it writes partials[c * slices + slice] and `sum_slices` adds
    // them in order: a channel of 256K values (a 32x32 output at batch 256) in one block took
    // 0.4 ms of latency-bound loads on an H200.
    extern "C" __global__ void channel_bias_gradient(const float* dy, float* db, float* partials, long batch, int channels,
                                                     long spatial, int slices) {
        __shared__ float partial[256];
        const unsigned c = blockIdx.x / slices, slice = blockIdx.x - c * slices;
        const unsigned area = (unsigned)spatial, count = (unsigned)(batch * spatial);
        const unsigned chunk = (count + slices - 1) / slices, begin = slice * chunk, end = min(count, begin + chunk);
        float sum = 0.f;
        #pragma unroll 4
        for (unsigned j = begin + threadIdx.x; j < end; j += blockDim.x) {
            unsigned b = j / area, s = j - b * area;
            sum += dy[(b * channels + c) * area + s];
        }
        partial[threadIdx.x] = sum;
        __syncthreads();
        for (int width = blockDim.x / 2; width > 0; width /= 2) {
            if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            if (slices == 1) db[c] += partial[0];
            else partials[blockIdx.x] = partial[0];
        }
    }

    // db[c] += partials[c * slices + 0] + ... + partials[c * slices + slices - 1], in that order.
    extern "C" __global__ void sum_slices(const float* partials, float* db, int channels, int slices) {
        for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < channels; c += gridDim.x * blockDim.x) {
            float sum = 0.f;
            for (int k = 0; k < slices; k++) sum += partials[c * slices + k];
            db[c] += sum;
        }
    }

    // dst (B, A, S) = src (A, B, S), as `swapLeadingAxes` in Engine/Core/Im2col.swift: NCHW
    // activations to the channel-major (C, N, H*W) matrices whose one GEMM sums a weight's
    // gradient over the batch, and back. One thread per destination element (coalesced writes);
    // 32-bit indices (the host checks the count): with 64-bit ones its four divisions per
    // element were software routines.
    extern "C" __global__ void swap_leading_axes(const float* src, float* dst, long a, long b, long inner) {
        const unsigned n = (unsigned)(a * b * inner), as = (unsigned)a, bs = (unsigned)b, area = (unsigned)inner;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
            unsigned rest = i / area, s = i - rest * area, k = rest / as, j = rest - k * as;
            dst[i] = src[(j * bs + k) * area + s];
        }
    }

    // y (B, C, S) = ycm (C, B, S) + bias[c] (bias may be null): a convolution's one GEMM writes
    // channel-major; this puts it in NCHW with the bias in the same pass. 32-bit indices.
    extern "C" __global__ void from_channel_major(const float* ycm, float* y, const float* bias, int batch, int channels,
                                                  int inner) {
        const unsigned n = (unsigned)batch * channels * inner;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
            unsigned rest = i / inner, s = i - rest * inner, b = rest / channels, c = rest - b * channels;
            float value = ycm[(c * batch + b) * inner + s];
            y[i] = bias ? value + bias[c] : value;
        }
    }
    """#, functions: ["im2col", "col2im", "add_channel_bias", "channel_bias_gradient", "swap_leading_axes", "from_channel_major",
                      "sum_slices"])

    /// `channel_bias_gradient` reduces with this many threads per block (a power of two).
    public static let reductionBlock = 256
}
