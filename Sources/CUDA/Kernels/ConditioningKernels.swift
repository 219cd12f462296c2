/// How the class label enters the networks, forward and backward side by side, as the CPU
/// layers (`Engine/Layers/Embedding.swift`, `ProjectionHead.swift`; the generator's per-class
/// scale and shift run inside its BatchNorm's kernels, `BatchNormKernels`).
///
/// The parameter gradients of a class sum over the batch entries of that class. Rather than
/// atomics (whose order varies, and with it the last bits), each gradient element is one thread
/// that loops over the batch: deterministic, and cheap at GAN batch sizes. Gradients are added
/// to (`+=`), as the CPU layers do, so that several uses of a parameter accumulate.
public enum ConditioningKernels {
    public static let source = KernelSource(name: "conditioning.cu", code: #"""
    #define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

    \#(KernelHelpers.blockSum)
    \#(KernelHelpers.mapLayout)
    // y[b, :] = weight[labels[b], :] (an embedding: weight is (classes, dimension)).
    extern "C" __global__ void embedding_forward(const float* weight, const int* labels, float* y, int batch, int dimension) {
        GRID_STRIDE(i, (long)batch * dimension) { y[i] = weight[(long)labels[i / dimension] * dimension + i % dimension]; }
    }

    // dweight[k, f] += sum over b with labels[b] == k of dy[b, f].
    extern "C" __global__ void embedding_backward(const float* dy, const int* labels, float* dweight, int batch, int classes,
                                                  int dimension) {
        GRID_STRIDE(i, (long)classes * dimension) {
            int k = i / dimension, f = i % dimension;
            float sum = 0.f;
            for (int b = 0; b < batch; b++) if (labels[b] == k) sum += dy[(long)b * dimension + f];
            dweight[i] += sum;
        }
    }

    // The projection discriminator's head, its linear part and class term together, over
    // features phi[b, f] of (batch, channels, area), f = c * area + p, stored image by image or
    // channel-major (`plane_of`: the discriminator's last maps as its convolution leaves them):
    //   logits[b] = <weight + embedding[labels[b]], phi[b]> + bias
    // One block per image, its threads over the features, a fixed-order tree (one thread per
    // image left a batch-64 step 1 ms of latency-bound loads). bias may be null.
    extern "C" __global__ void projection_head_forward(const float* phi, const float* weight, const float* bias,
            const float* embedding, const int* labels, float* logits, int batch, int channels, int area, int channel_major) {
        __shared__ float partial[256];
        const unsigned features = (unsigned)channels * area, plane = area;
        for (unsigned b = blockIdx.x; b < (unsigned)batch; b += gridDim.x) {
            const float* e = embedding + (unsigned)labels[b] * features;
            float dot = 0.f;
            for (unsigned f = threadIdx.x; f < features; f += blockDim.x) {
                const unsigned c = f / plane, p = f - c * plane;
                dot += (weight[f] + e[f]) * phi[plane_of(b, c, batch, channels, channel_major) * plane + p];
            }
            dot = block_sum(dot, partial);
            if (threadIdx.x == 0) logits[b] = dot + (bias ? bias[0] : 0.f);
        }
    }

    // dphi[b, f] = dy[b] * (weight[f] + embedding[labels[b], f]), in phi's layout (written).
    extern "C" __global__ void projection_head_input_grad(const float* dy, const float* weight, const float* embedding,
            const int* labels, float* dphi, int batch, int channels, int area, int channel_major) {
        const unsigned features = (unsigned)channels * area, plane = area, n = (unsigned)batch * features;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
            unsigned b, c;
            plane_owner(i / plane, batch, channels, channel_major, b, c);
            const unsigned f = c * plane + i % plane;
            dphi[i] = dy[b] * (weight[f] + embedding[(unsigned)labels[b] * features + f]);
        }
    }

    // The head's parameter gradients, added: thread (row, f) of (classes + 1) x features sums
    // dy[b] * phi[b, f] over the images of class `row` into dembedding[row, f], or, in the last
    // row, over every image into dweight[f]; one thread more adds the sum of dy to dbias (may be
    // null). Each loops over the batch in order: no atomics.
    extern "C" __global__ void projection_head_parameter_grad(const float* phi, const float* dy, const int* labels,
            float* dweight, float* dbias, float* dembedding, int batch, int classes, int channels, int area, int channel_major) {
        const unsigned features = (unsigned)channels * area, plane = area, n = (unsigned)(classes + 1) * features;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i <= n; i += gridDim.x * blockDim.x) {
            if (i == n) {
                if (!dbias) continue;
                float total = 0.f;
                for (unsigned b = 0; b < (unsigned)batch; b++) total += dy[b];
                dbias[0] += total;
                continue;
            }
            const unsigned row = i / features, f = i - row * features, c = f / plane, p = f - c * plane;
            const bool all = row == (unsigned)classes;
            float sum = 0.f;
            for (unsigned b = 0; b < (unsigned)batch; b++) {
                if (!all && labels[b] != (int)row) continue;
                sum += dy[b] * phi[plane_of(b, c, batch, channels, channel_major) * plane + p];
            }
            if (all) dweight[f] += sum; else dembedding[i] += sum;
        }
    }
    """#, functions: ["embedding_forward", "embedding_backward", "projection_head_forward", "projection_head_input_grad",
                      "projection_head_parameter_grad"])

    /// Threads per block of `projection_head_forward` (a power of two, at most its 256 partial sums).
    public static let reductionBlock = 256
}
