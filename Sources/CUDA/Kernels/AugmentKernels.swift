/// DiffAugment on the GPU (`GAN/DiffAugment.swift`): colour, translation and cutout, the same
/// maps as the CPU's, with per-image parameters drawn on the device from the step counter (so a
/// replayed CUDA graph augments afresh) and kept for the backward pass.
///
/// Parameters per image, 8 floats: brightness, saturation, contrast, shift x, shift y, cut x,
/// cut y, cut size (the integers as floats). The forward map per image is
///     z = colour(x);  t[c, y, x] = z[c, y - sy, x - sx] (0 outside);  out = t with the cut square 0
/// and colour(x) = (sat-mix(x + brightness) - m) * contrast + m, where m is the image's mean
/// after brightness (saturation keeps each pixel's channel mean, so the mean too) and sat-mix
/// moves each pixel's channels toward their mean (x - mean_c) * saturation + mean_c. Backward
/// applies the adjoints in reverse order. One block per image; the image mean is a block sum.
///
/// Each transform is drawn with probability `*probability` (1: always, DiffAugment; adaptive
/// augmentation keeps it in device memory and `ada_observe` moves it, as
/// `AdaptiveAugmentation` does on the CPU); a transform not drawn keeps identity parameters.
public enum AugmentKernels {
    public static let source = KernelSource(name: "augment.cu", code: #"""
    \#(KernelHelpers.random)
    // policy bits: 1 colour, 2 translation, 4 cutout (DiffAugment.Policy). One thread per image.
    // 16 draws per image: 0-6 the parameters, 8-10 whether each transform applies.
    extern "C" __global__ void augment_draw(float* params, int batch, int height, int width, int policy,
                                            unsigned long long seed, const unsigned long long* step,
                                            const float* probability) {
        int b = blockIdx.x * blockDim.x + threadIdx.x;
        if (b >= batch) return;
        unsigned long long base = (*step * (unsigned long long)batch + b) * 16;
        float* p = params + 8 * b;
        const float chance = *probability;
        p[0] = 0.f; p[1] = 1.f; p[2] = 1.f; p[3] = 0.f; p[4] = 0.f; p[5] = 0.f; p[6] = 0.f; p[7] = 0.f;
        if ((policy & 1) && uniform01(splitmix(seed, base + 8)) < chance) {
            p[0] = uniform01(splitmix(seed, base)) - 0.5f;
            p[1] = 2.f * uniform01(splitmix(seed, base + 1));
            p[2] = 0.5f + uniform01(splitmix(seed, base + 2));
        }
        if ((policy & 2) && uniform01(splitmix(seed, base + 9)) < chance) {
            int most = max(1, width / 8);
            p[3] = (float)((int)(splitmix(seed, base + 3) % (unsigned long long)(2 * most + 1)) - most);
            p[4] = (float)((int)(splitmix(seed, base + 4) % (unsigned long long)(2 * most + 1)) - most);
        }
        if ((policy & 4) && uniform01(splitmix(seed, base + 10)) < chance) {
            int size = max(1, width / 2);
            p[7] = (float)size;
            p[5] = (float)((int)(splitmix(seed, base + 5) % (unsigned long long)(width + 1 - size / 2)) - size / 2);
            p[6] = (float)((int)(splitmix(seed, base + 6) % (unsigned long long)(height + 1 - size / 2)) - size / 2);
        }
    }

    \#(KernelHelpers.blockSum)
    __device__ bool in_cut(const float* p, int y, int x) {
        int cx = (int)p[5], cy = (int)p[6], size = (int)p[7];
        return size > 0 && y >= cy && y < cy + size && x >= cx && x < cx + size;
    }

    // The colour map of channel c at one pixel (index `pixel` of the plane) of one image.
    __device__ float colour(const float* image, int channels, long plane, long pixel, int c, const float* p, float mean) {
        float channel_mean = 0.f;
        for (int k = 0; k < channels; k++) channel_mean += image[k * plane + pixel] + p[0];
        channel_mean /= channels;
        float v = image[c * plane + pixel] + p[0];
        if (channels > 1) v = (v - channel_mean) * p[1] + channel_mean;
        return (v - mean) * p[2] + mean;
    }

    // x, y: (B, C, H, W); one block (a power of two, at most 256 threads) per image.
    extern "C" __global__ void augment_forward(const float* x, float* y, const float* params,
                                               int channels, int height, int width) {
        __shared__ float partial[256];
        const long plane = (long)height * width, size = channels * plane;
        const float* image = x + blockIdx.x * size;
        const float* p = params + 8 * blockIdx.x;
        float sum = 0.f;
        for (long i = threadIdx.x; i < size; i += blockDim.x) sum += image[i];
        float mean = block_sum(sum, partial) / size + p[0];
        int sx = (int)p[3], sy = (int)p[4];
        for (int i = threadIdx.x; i < (int)size; i += blockDim.x) {
            int c = i / (int)plane, rest = i - c * (int)plane, row = rest / width, column = rest - row * width;
            int from_row = row - sy, from_column = column - sx;
            float v = 0.f;
            if (!in_cut(p, row, column) && from_row >= 0 && from_row < height && from_column >= 0 && from_column < width)
                v = colour(image, channels, plane, (long)from_row * width + from_column, c, p, mean);
            y[blockIdx.x * size + i] = v;
        }
    }

    // The gradient that reaches z (the colour map's output) at channel c, pixel (row, column).
    __device__ float dz(const float* g, const float* p, int c, int row, int column, int height, int width, long plane) {
        int to_row = row + (int)p[4], to_column = column + (int)p[3];
        if (to_row < 0 || to_row >= height || to_column < 0 || to_column >= width || in_cut(p, to_row, to_column)) return 0.f;
        return g[c * plane + (long)to_row * width + to_column];
    }

    extern "C" __global__ void augment_backward(const float* dy, float* dx, const float* params,
                                                int channels, int height, int width) {
        __shared__ float partial[256];
        const long plane = (long)height * width, size = channels * plane;
        const float* g = dy + blockIdx.x * size;
        const float* p = params + 8 * blockIdx.x;
        float sum = 0.f;
        for (int i = threadIdx.x; i < (int)size; i += blockDim.x) {
            int c = i / (int)plane, rest = i - c * (int)plane, row = rest / width, column = rest - row * width;
            sum += dz(g, p, c, row, column, height, width, plane);
        }
        // Contrast: d = contrast * dz + (1 - contrast) * mean(dz); saturation: each pixel's
        // channels mixed with their mean (self-adjoint); brightness: the identity.
        float mean = block_sum(sum, partial) / size;
        for (int i = threadIdx.x; i < (int)size; i += blockDim.x) {
            int c = i / (int)plane, rest = i - c * (int)plane, row = rest / width, column = rest - row * width;
            float own = p[2] * dz(g, p, c, row, column, height, width, plane) + (1.f - p[2]) * mean;
            if (channels > 1) {
                float channel_mean = 0.f;
                for (int k = 0; k < channels; k++)
                    channel_mean += p[2] * dz(g, p, k, row, column, height, width, plane) + (1.f - p[2]) * mean;
                channel_mean /= channels;
                own = (own - channel_mean) * p[1] + channel_mean;
            }
            dx[blockIdx.x * size + i] = own;
        }
    }
    // Adaptive augmentation's controller (GAN/AdaptiveAugmentation.swift), one block: state =
    // {p, real logits above 0, logits seen, steps} since the last adjustment; every `interval`
    // steps p moves by seen / ramp towards more augmentation when r = 2 above / seen - 1 is over
    // `target`, towards less when under, within [0, 1]. The CPU's arithmetic, in its order.
    extern "C" __global__ void ada_observe(const float* logits, long n, float* state, float target, float ramp,
                                           int interval) {
        __shared__ float partial[256];
        float above = 0.f;
        for (long i = threadIdx.x; i < n; i += blockDim.x) above += logits[i] > 0.f ? 1.f : 0.f;
        float total = block_sum(above, partial);
        if (threadIdx.x != 0) return;
        state[1] += total;
        state[2] += (float)n;
        state[3] += 1.f;
        if (state[3] >= (float)interval) {
            float r = 2.f * state[1] / state[2] - 1.f;
            float direction = r > target ? 1.f : (r < target ? -1.f : 0.f);
            state[0] = fminf(fmaxf(state[0] + direction * state[2] / ramp, 0.f), 1.f);
            state[1] = 0.f; state[2] = 0.f; state[3] = 0.f;
        }
    }
    """#, functions: ["augment_draw", "augment_forward", "augment_backward", "ada_observe"])

    /// Threads of `ada_observe`'s one block (a power of two).
    public static let observeBlock = 256

    /// Threads per image block of `augment_forward` and `augment_backward` (a power of two).
    public static let block = 256
}
