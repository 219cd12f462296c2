/// Getting data to the networks without the host: a batch gathered from the dataset in
/// device memory (uploaded once, as bytes), and latent vectors drawn on the device. Both take
/// their randomness from a counter in device memory, so a captured CUDA graph draws new
/// batches at every replay.
public enum DataKernels {
    public static let source = KernelSource(name: "data.cu", code: #"""
    \#(KernelHelpers.random)
    // images: count x image_bytes pixels (0...255); indices drawn uniformly with replacement
    // from the step counter; out: batch x image_bytes floats in [-1, 1]; labels copied along.
    extern "C" __global__ void gather_batch(const unsigned char* images, const int* labels, long count, int image_bytes,
                                            float* out, int* out_labels, int batch,
                                            unsigned long long seed, const unsigned long long* step) {
        int row = blockIdx.x;
        if (row >= batch) return;
        unsigned long long bits = splitmix(seed ^ 0xD1B54A32D192ED03ull, *step * (unsigned long long)batch + row);
        long index = (long)(bits % (unsigned long long)count);
        const unsigned char* from = images + index * image_bytes;
        float* to = out + (long)row * image_bytes;
        for (int i = threadIdx.x; i < image_bytes; i += blockDim.x) to[i] = from[i] * (2.f / 255.f) - 1.f;
        if (threadIdx.x == 0) out_labels[row] = labels[index];
    }

    // n normal values (Box-Muller on pairs), times temperature; labels uniform in [0, classes),
    // with `paired` the second half's the first half's, pair by pair (ModeSeekingRegularization
    // .pairLabels: each label is drawn from its first-half index).
    extern "C" __global__ void draw_latents(float* z, long n, int* labels, int batch, int classes, float temperature,
                                            unsigned long long seed, const unsigned long long* step, int paired) {
        long pairs = (n + 1) / 2;
        unsigned long long base = *step * (unsigned long long)(pairs + batch);
        for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < pairs; i += (long)gridDim.x * blockDim.x) {
            float u1 = uniform01(splitmix(seed, base + 2 * i)), u2 = uniform01(splitmix(seed, base + 2 * i + 1));
            float r = sqrtf(-2.f * logf(u1)) * temperature, angle = 6.283185307179586f * u2;
            z[2 * i] = r * cosf(angle);
            if (2 * i + 1 < n) z[2 * i + 1] = r * sinf(angle);
        }
        for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < batch; i += (long)gridDim.x * blockDim.x) {
            int half = batch / 2;
            long drawn = paired && i >= half && i < 2 * half ? i - half : i;
            labels[i] = (int)(splitmix(seed ^ 0x632BE59BD9B4E019ull, base + drawn) % (unsigned long long)classes);
        }
    }

    extern "C" __global__ void advance_step(unsigned long long* step) { *step += 1; }
    """#, functions: ["gather_batch", "draw_latents", "advance_step"])
}
