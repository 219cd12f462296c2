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

    // The projection discriminator's class term: y[b] += <embedding[labels[b]], phi[b]>
    // (y holds the linear part already). One block per image, its threads over the features
    // and a fixed-order tree (one thread per image left a batch-64 step 1 ms of latency-bound loads).
    extern "C" __global__ void projection_forward(const float* phi, const float* embedding, const int* labels, float* y,
                                                  int batch, int features) {
        __shared__ float partial[256];
        for (int b = blockIdx.x; b < batch; b += gridDim.x) {
            const float* e = embedding + (long)labels[b] * features;
            const float* x = phi + (long)b * features;
            float dot = 0.f;
            for (int f = threadIdx.x; f < features; f += blockDim.x) dot += e[f] * x[f];
            dot = block_sum(dot, partial);
            if (threadIdx.x == 0) y[b] += dot;
        }
    }

    // dphi[b, f] += dy[b] * embedding[labels[b], f]; dembedding[k, f] += sum over b of class k of dy[b] * phi[b, f].
    extern "C" __global__ void projection_backward(const float* phi, const float* embedding, const int* labels, const float* dy,
                                                   float* dphi, float* dembedding, int batch, int classes, int features) {
        GRID_STRIDE(i, (long)batch * features) {
            int b = i / features, f = i % features;
            dphi[i] += dy[b] * embedding[(long)labels[b] * features + f];
        }
        GRID_STRIDE(i, (long)classes * features) {
            int k = i / features, f = i % features;
            float sum = 0.f;
            for (int b = 0; b < batch; b++) if (labels[b] == k) sum += dy[b] * phi[(long)b * features + f];
            dembedding[i] += sum;
        }
    }
    """#, functions: ["embedding_forward", "embedding_backward", "projection_forward", "projection_backward"])

    /// Threads per block of `projection_forward` (a power of two, at most its 256 partial sums).
    public static let reductionBlock = 256
}
