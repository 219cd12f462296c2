/// Generation's images on the device: quantised to the bytes that are written, and prepared as
/// the class check's judge sees them, so that a batch is judged where it was made and only
/// bytes (a quarter of the floats) come back to the host.
public enum ImageKernels {
    public static let source = KernelSource(name: "image.cu", code: #"""
    // images (B, C, P) in [-1, 1], P pixels a channel -> bytes (B, P, C), channels interleaved as
    // PNG stores them: (v + 1) * 127.5 rounded half away from zero, clamped to 0...255
    // (`Sampler.square`).
    extern "C" __global__ void quantize_images(const float* images, unsigned char* out, long batch, int channels, int plane) {
        long n = batch * channels * plane, image = (long)channels * plane;
        for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
            long b = i / image;
            int rest = (int)(i - b * image), p = rest / channels, c = rest - p * channels;
            float v = (images[b * image + (long)c * plane + p] + 1.f) * 127.5f;
            out[i] = (unsigned char)fminf(255.f, fmaxf(0.f, roundf(v)));
        }
    }

    // Border pixel `visit` of the width x height image at (x0, y0) in a side x side square, in
    // `Resampling.borderMode`'s order (top and bottom rows, then left and right columns: the
    // corners twice), as one key: the channels' bytes, first channel highest.
    __device__ unsigned border_key(const unsigned char* square, int visit, int channels, int side,
                                   int x0, int y0, int width, int height) {
        int x, y;
        if (visit < 2 * width) { x = visit / 2; y = (visit & 1) ? height - 1 : 0; }
        else { int k = visit - 2 * width; y = k / 2; x = (k & 1) ? width - 1 : 0; }
        const unsigned char* pixel = square + ((long)(y0 + y) * side + x0 + x) * channels;
        unsigned key = 0;
        for (int c = 0; c < channels; c++) key = (key << 8) | pixel[c];
        return key;
    }

    // One block (256 threads) per image. bytes (B, side, side, C): generated squares. The
    // dataset's images are width x height <= side: the centre of the square (`Resampling.unfit`),
    // which the judge fits back to side x side by padding with the border's most common
    // colour (`Resampling.pad`; ties to the darker colour, then the smaller key). So: the
    // centre kept, the rest that colour. out (B, C, side, side) in [-1, 1] (`scaledPixel`).
    extern "C" __global__ void judge_input(const unsigned char* bytes, float* out, int channels, int side, int width, int height) {
        __shared__ unsigned long long best[256];
        const unsigned char* square = bytes + (long)blockIdx.x * side * side * channels;
        float* to = out + (long)blockIdx.x * channels * side * side;
        int x0 = (side - width) / 2, y0 = (side - height) / 2;
        unsigned long long mine = 0;
        if (width < side || height < side) {
            int visits = 2 * (width + height);
            for (int i = threadIdx.x; i < visits; i += blockDim.x) {
                unsigned key = border_key(square, i, channels, side, x0, y0, width, height), count = 0, darkness = 0;
                for (int j = 0; j < visits; j++) count += border_key(square, j, channels, side, x0, y0, width, height) == key;
                for (int c = 0; c < channels; c++) darkness += (key >> (8 * c)) & 255;
                // Most visits first, then the least darkness, then the smallest key.
                unsigned long long score = ((unsigned long long)count << 34) | ((unsigned long long)(1023 - darkness) << 24)
                    | (0xFFFFFFull - key);
                mine = score > mine ? score : mine;
            }
        }
        best[threadIdx.x] = mine;
        __syncthreads();
        for (int s = blockDim.x / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s && best[threadIdx.x + s] > best[threadIdx.x]) best[threadIdx.x] = best[threadIdx.x + s];
            __syncthreads();
        }
        unsigned background = 0xFFFFFFu - (unsigned)(best[0] & 0xFFFFFFull);
        int plane = side * side;
        for (int i = threadIdx.x; i < channels * plane; i += blockDim.x) {
            int c = i / plane, p = i - c * plane, y = p / side, x = p - y * side;
            bool inside = x >= x0 && x < x0 + width && y >= y0 && y < y0 + height;
            unsigned value = inside ? square[(long)p * channels + c] : (background >> (8 * (channels - 1 - c))) & 255;
            to[i] = (float)value * (2.f / 255.f) - 1.f;
        }
    }

    // The class check's near-copy test (`NearCopies`): for each sample (one block of 256
    // threads each), the squared distance of its features (B, D) to the nearest real image of
    // its class. real_t (D, N): every class's real features, one column each, classes in turn
    // (class k's columns offsets[k] ..< offsets[k + 1]), so that a warp's 32 threads read 32
    // neighbouring floats. The distance summed as (q - r)^2, not |q|^2 + |r|^2 - 2 q.r: no
    // cancellation, whatever the device's products. nearest (B): FLT_MAX for a class without
    // real images.
    extern "C" __global__ void nearest_real(const float* features, const int* labels, const float* real_t,
                                            const int* offsets, float* nearest, int dimension, int total) {
        __shared__ float query[128];    // dimension <= 128 (`DeviceJudge`)
        __shared__ float best[256];     // blockDim.x <= 256
        const float* q = features + (long)blockIdx.x * dimension;
        for (int j = threadIdx.x; j < dimension; j += blockDim.x) query[j] = q[j];
        __syncthreads();
        int k = labels[blockIdx.x];
        float mine = 3.402823466e38f;   // FLT_MAX: no real image nearer
        for (int r = offsets[k] + threadIdx.x; r < offsets[k + 1]; r += blockDim.x) {
            float sum = 0.f;
            for (int j = 0; j < dimension; j++) { float d = query[j] - real_t[(long)j * total + r]; sum += d * d; }
            mine = fminf(mine, sum);
        }
        best[threadIdx.x] = mine;
        __syncthreads();
        for (int width = blockDim.x / 2; width > 0; width /= 2) {
            if (threadIdx.x < width) best[threadIdx.x] = fminf(best[threadIdx.x], best[threadIdx.x + width]);
            __syncthreads();
        }
        if (threadIdx.x == 0) nearest[blockIdx.x] = best[0];
    }
    """#, functions: ["quantize_images", "judge_input", "nearest_real"])
}
