/// BatchNorm over NCHW in training mode, fused with the activation that follows it (what
/// PyTorch runs as two or three kernels). One block per channel reduces its N*H*W values.
///
/// Statistics as in `Engine/Layers/BatchNorm2d.swift`: the biased variance normalises; the
/// running variance gets the unbiased one.
public enum BatchNormKernels {
    public static let source = KernelSource(name: "batchnorm.cu", code: #"""
    #define BLOCK 256

    \#(KernelHelpers.blockSum)
    // grid: C blocks of BLOCK threads. Writes mean and inverse standard deviation per channel,
    // updates the running statistics, and y = act(gamma * (x - mean) * inv_std + beta).
    // activation: 0 none, 1 ReLU, 2 LeakyReLU(slope). xhat is kept for the backward pass.
    extern "C" __global__ void batchnorm_forward_training(
            const float* x, float* y, float* xhat, const float* gamma, const float* beta,
            float* mean_out, float* inv_std_out, float* running_mean, float* running_var,
            int n, int c, int hw, float eps, float momentum, int activation, float slope) {
        __shared__ float shared[BLOCK];
        const unsigned channel = blockIdx.x, count = (unsigned)n * hw, area = hw;
        float sum = 0.f, sum_sq = 0.f;
        #pragma unroll 4
        for (unsigned k = threadIdx.x; k < count; k += BLOCK) {
            unsigned image = k / area, p = k - image * area;
            float v = x[(image * c + channel) * area + p];
            sum += v; sum_sq += v * v;
        }
        float mean = block_sum(sum, shared) / count;
        float variance = fmaxf(block_sum(sum_sq, shared) / count - mean * mean, 0.f);
        float inv_std = rsqrtf(variance + eps);
        if (threadIdx.x == 0) {
            mean_out[channel] = mean;
            inv_std_out[channel] = inv_std;
            float unbiased = count > 1 ? variance * count / (count - 1) : variance;
            running_mean[channel] = (1.f - momentum) * running_mean[channel] + momentum * mean;
            running_var[channel] = (1.f - momentum) * running_var[channel] + momentum * unbiased;
        }
        float g = gamma[channel], b = beta[channel];
        #pragma unroll 4
        for (unsigned k = threadIdx.x; k < count; k += BLOCK) {
            unsigned image = k / area, p = k - image * area, index = (image * c + channel) * area + p;
            float h = (x[index] - mean) * inv_std;
            xhat[index] = h;
            float out = g * h + b;
            if (activation == 1) out = fmaxf(out, 0.f);
            else if (activation == 2) out = out > 0.f ? out : slope * out;
            y[index] = out;
        }
    }

    // Backward through the activation and the normalisation together. y is the forward output
    // (the activation's gradient is read from its sign). Adds to dgamma and dbeta.
    //   dxhat = dy' * gamma;  dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    extern "C" __global__ void batchnorm_backward_training(
            const float* dy, const float* y, const float* xhat, const float* gamma, const float* inv_std,
            float* dx, float* dgamma, float* dbeta, int n, int c, int hw, int activation, float slope) {
        __shared__ float shared[BLOCK];
        const unsigned channel = blockIdx.x, count = (unsigned)n * hw, area = hw;
        float sum_dy = 0.f, sum_dy_xhat = 0.f;
        #pragma unroll 4
        for (unsigned k = threadIdx.x; k < count; k += BLOCK) {
            unsigned image = k / area, p = k - image * area, index = (image * c + channel) * area + p;
            float d = dy[index];
            if (activation == 1) d = y[index] > 0.f ? d : 0.f;
            else if (activation == 2) d = y[index] > 0.f ? d : slope * d;
            sum_dy += d; sum_dy_xhat += d * xhat[index];
        }
        sum_dy = block_sum(sum_dy, shared);
        sum_dy_xhat = block_sum(sum_dy_xhat, shared);
        if (threadIdx.x == 0) { dgamma[channel] += sum_dy_xhat; dbeta[channel] += sum_dy; }
        float g = gamma[channel], s = inv_std[channel];
        float mean_d = g * sum_dy / count, mean_d_xhat = g * sum_dy_xhat / count;
        #pragma unroll 4
        for (unsigned k = threadIdx.x; k < count; k += BLOCK) {
            unsigned image = k / area, p = k - image * area, index = (image * c + channel) * area + p;
            float d = dy[index];
            if (activation == 1) d = y[index] > 0.f ? d : 0.f;
            else if (activation == 2) d = y[index] > 0.f ? d : slope * d;
            dx[index] = s * (g * d - mean_d - xhat[index] * mean_d_xhat);
        }
    }

    // For sampling with given statistics (standing ones): y = act(gamma * (x - mean) * inv_std
    // + beta) element-wise, nothing kept. (With the batch's own statistics, sampling runs the
    // training kernel with momentum 0: the running averages stay as they are.)
    extern "C" __global__ void batchnorm_apply(const float* x, float* y, const float* gamma, const float* beta,
                                               const float* mean, const float* inv_std, long n, int c, long hw,
                                               int activation, float slope) {
        for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n * c * hw; i += (long)gridDim.x * blockDim.x) {
            int channel = (i / hw) % c;
            float out = gamma[channel] * (x[i] - mean[channel]) * inv_std[channel] + beta[channel];
            if (activation == 1) out = fmaxf(out, 0.f);
            else if (activation == 2) out = out > 0.f ? out : slope * out;
            y[i] = out;
        }
    }
    """#, functions: ["batchnorm_forward_training", "batchnorm_backward_training", "batchnorm_apply"])
}
