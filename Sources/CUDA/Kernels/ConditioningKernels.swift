/// How the class label enters the networks, forward and backward side by side, as the CPU
/// layers (`Engine/Layers/Embedding.swift`, `ProjectionHead.swift`, `ClassConditionalAffine.swift`).
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

    // Per-class affine of the generator's normalised maps: y = x * scale[label, c] + shift[label, c]
    // over (B, C, area).
    extern "C" __global__ void class_affine_forward(const float* x, const float* scale, const float* shift, const int* labels,
                                                    float* y, int batch, int channels, long area, int channel_major) {
        // 32-bit indices (the host checks the count): 64-bit divisions are software routines.
        const unsigned n = (unsigned)((long)batch * channels * area), planeArea = (unsigned)area, cs = (unsigned)channels;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
            unsigned b, c;
            plane_owner(i / planeArea, (unsigned)batch, cs, channel_major, b, c);
            unsigned k = (unsigned)labels[b] * cs + c;
            y[i] = x[i] * scale[k] + shift[k];
        }
    }

    // dx = dy * scale[label, c]; dscale[k, c] += sum of dy * x over the planes of class k and
    // channel c; dshift[k, c] += sum of dy over them. The parameter gradients: one block per
    // (class, channel), its threads over the pixels, a fixed-order tree (256 threads).
    extern "C" __global__ void class_affine_backward_input(const float* dy, const float* scale, const int* labels, float* dx,
                                                           int batch, int channels, long area, int channel_major) {
        const unsigned n = (unsigned)((long)batch * channels * area), planeArea = (unsigned)area, cs = (unsigned)channels;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
            unsigned b, c;
            plane_owner(i / planeArea, (unsigned)batch, cs, channel_major, b, c);
            dx[i] = dy[i] * scale[(unsigned)labels[b] * cs + c];
        }
    }

    extern "C" __global__ void class_affine_backward_parameters(const float* dy, const float* x, const int* labels,
                                                                float* dscale, float* dshift, int batch, int channels, long area,
                                                                int channel_major) {
        __shared__ float products[256], sums[256];
        const int k = blockIdx.x / channels, c = blockIdx.x % channels;
        float product = 0.f, sum = 0.f;
        for (int b = 0; b < batch; b++) {
            if (labels[b] != k) continue;
            const long offset = (long)plane_of(b, c, batch, channels, channel_major) * area;
            for (long j = threadIdx.x; j < area; j += blockDim.x) { product += dy[offset + j] * x[offset + j]; sum += dy[offset + j]; }
        }
        products[threadIdx.x] = product; sums[threadIdx.x] = sum;
        __syncthreads();
        for (int width = blockDim.x / 2; width > 0; width /= 2) {
            if (threadIdx.x < width) { products[threadIdx.x] += products[threadIdx.x + width]; sums[threadIdx.x] += sums[threadIdx.x + width]; }
            __syncthreads();
        }
        if (threadIdx.x == 0) { dscale[blockIdx.x] += products[0]; dshift[blockIdx.x] += sums[0]; }
    }
    """#, functions: ["embedding_forward", "embedding_backward", "projection_forward", "projection_backward",
                      "class_affine_forward", "class_affine_backward_input", "class_affine_backward_parameters"])

    /// Threads per block of `class_affine_backward_parameters` (a power of two), launched as
    /// classes x channels blocks.
    public static let reductionBlock = 256
}
