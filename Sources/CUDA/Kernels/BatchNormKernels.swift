/// BatchNorm over NCHW in training mode, fused with the activation that follows it and, in the
/// class-conditional generator, the per-class scale and shift between the two (what PyTorch
/// runs as three to five kernels each way). One block per channel reduces its N*H*W values.
///
/// Statistics as in `Engine/Layers/BatchNorm2d.swift`: the biased variance normalises; the
/// running variance gets the unbiased one.
public enum BatchNormKernels {
    public static let source = KernelSource(name: "batchnorm.cu", code: #"""
    #define BLOCK 256

    \#(KernelHelpers.blockSum)
    \#(KernelHelpers.mapLayout)
    // activation: 0 none, 1 ReLU, 2 LeakyReLU(slope), applied to a normalised value, and a
    // gradient taken back through it (read from the sign of the activation's output y).
    __device__ float activate(float out, int activation, float slope) {
        if (activation == 1) return fmaxf(out, 0.f);
        if (activation == 2) return out > 0.f ? out : slope * out;
        return out;
    }

    __device__ float through_activation(float d, float y, int activation, float slope) {
        if (activation == 1) return y > 0.f ? d : 0.f;
        if (activation == 2) return y > 0.f ? d : slope * d;
        return d;
    }

    // The class-conditional generator's per-class scale and shift between the normalisation
    // and the activation (`Engine/Layers/BatchNormActivation.swift`): out = act((gamma h + beta)
    // s + t), s and t its class's row. class_scale null: none. Position k of a channel's values
    // (image-major in both layouts) belongs to batch entry k / plane, plane = H * W.
    __device__ unsigned class_row(const int* labels, unsigned k, unsigned plane, unsigned c, unsigned channel) {
        return (unsigned)labels[k / plane] * c + channel;
    }

    __device__ float class_affine(float out, const float* class_scale, const float* class_shift, const int* labels,
                                  unsigned k, unsigned plane, unsigned c, unsigned channel) {
        if (!class_scale) return out;
        const unsigned row = class_row(labels, k, plane, c, channel);
        return out * class_scale[row] + class_shift[row];
    }

    // A gradient at the activation's input taken back through the class scale.
    __device__ float through_class_scale(float d, const float* class_scale, const int* labels,
                                         unsigned k, unsigned plane, unsigned c, unsigned channel) {
        return class_scale ? d * class_scale[class_row(labels, k, plane, c, channel)] : d;
    }

    // Position in its channel's image-major run of element i of (n, c, hw); the element-wise
    // kernels find it only with a class table (two more divisions an element).
    __device__ unsigned channel_position(unsigned i, unsigned c, unsigned hw) {
        return (i / (hw * c)) * hw + i % hw;
    }
    // The statistics take one pass, of the values less one of the channel's own (its first):
    // E[v^2] - E[v]^2 of values far from zero (a mean 500 times their spread) loses most of a
    // float's digits, and of values shifted near their mean it does not (the shifted-data
    // algorithm; the CPU engine takes two passes instead).
    // grid: C blocks of BLOCK threads. Writes mean and inverse standard deviation per channel,
    // updates the running statistics, and y = act(gamma * (x - mean) * inv_std + beta).
    // activation: 0 none, 1 ReLU, 2 LeakyReLU(slope). xhat is kept for the backward pass.
    // input_bias (may be null): a bias per channel that the layer before did not add to x.
    // Normalising cancels it, so only the running mean takes it (x + bias is what the model's
    // BatchNorm sees); the bias's own gradient, the sum of dx, does not depend on it either.
    extern "C" __global__ void batchnorm_forward_training(
            const float* x, float* y, float* xhat, const float* gamma, const float* beta,
            float* mean_out, float* inv_std_out, float* running_mean, float* running_var,
            int n, int c, int hw, float eps, float momentum, int activation, float slope, const float* input_bias,
            const float* class_scale, const float* class_shift, const int* labels, int plane) {
        __shared__ float shared[BLOCK];
        const unsigned channel = blockIdx.x, count = (unsigned)n * hw, area = hw;
        const float shift = x[channel * area];
        float sum = 0.f, sum_sq = 0.f;
        #pragma unroll 4
        for (unsigned k = threadIdx.x; k < count; k += BLOCK) {
            unsigned image = k / area, p = k - image * area;
            float v = x[(image * c + channel) * area + p] - shift;
            sum += v; sum_sq += v * v;
        }
        float shifted_mean = block_sum(sum, shared) / count, mean = shift + shifted_mean;
        float variance = fmaxf(block_sum(sum_sq, shared) / count - shifted_mean * shifted_mean, 0.f);
        float inv_std = rsqrtf(variance + eps);
        if (threadIdx.x == 0) {
            mean_out[channel] = mean;
            inv_std_out[channel] = inv_std;
            float unbiased = count > 1 ? variance * count / (count - 1) : variance;
            float model_mean = input_bias ? mean + input_bias[channel] : mean;
            running_mean[channel] = (1.f - momentum) * running_mean[channel] + momentum * model_mean;
            running_var[channel] = (1.f - momentum) * running_var[channel] + momentum * unbiased;
        }
        float g = gamma[channel], b = beta[channel];
        #pragma unroll 4
        for (unsigned k = threadIdx.x; k < count; k += BLOCK) {
            unsigned image = k / area, p = k - image * area, index = (image * c + channel) * area + p;
            float h = (x[index] - mean) * inv_std;
            xhat[index] = h;
            float out = class_affine(g * h + b, class_scale, class_shift, labels, k, plane, c, channel);
            y[index] = activate(out, activation, slope);
        }
    }

    // Backward through the activation (and the class scale) and the normalisation together. y
    // is the forward output (the activation's gradient is read from its sign). Adds to dgamma
    // and dbeta; the class table's gradients are batchnorm_class_grad's.
    //   dxhat = dy' * gamma;  dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    extern "C" __global__ void batchnorm_backward_training(
            const float* dy, const float* y, const float* xhat, const float* gamma, const float* inv_std,
            float* dx, float* dgamma, float* dbeta, int n, int c, int hw, int activation, float slope,
            const float* class_scale, const int* labels, int plane) {
        __shared__ float shared[BLOCK];
        const unsigned channel = blockIdx.x, count = (unsigned)n * hw, area = hw;
        float sum_dy = 0.f, sum_dy_xhat = 0.f;
        #pragma unroll 4
        for (unsigned k = threadIdx.x; k < count; k += BLOCK) {
            unsigned image = k / area, p = k - image * area, index = (image * c + channel) * area + p;
            float d = through_class_scale(through_activation(dy[index], y[index], activation, slope),
                                          class_scale, labels, k, plane, c, channel);
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
            float d = through_class_scale(through_activation(dy[index], y[index], activation, slope),
                                          class_scale, labels, k, plane, c, channel);
            dx[index] = s * (g * d - mean_d - xhat[index] * mean_d_xhat);
        }
    }

    // The same in three kernels for a channel too large for one block (G's 64-channel 16x16
    // layer at batch 256: 65,536 values a channel, 0.43 ms of latency-bound loads in one block
    // on an H200). Block (channel, slice) of C x slices sums one contiguous slice; one thread
    // per channel adds the slices in order (deterministic) and makes the statistics; then an
    // element-wise pass normalises. partials: 2 floats per block (sum, sum of squares).
    // The values block (channel, slice) of a split reduction sums: blockIdx.x = channel *
    // slices + slice; the channel's n * hw values (image-major) cut into `slices` runs.
    __device__ void channel_slice(int n, int hw, int slices, unsigned& channel, unsigned& begin, unsigned& end) {
        channel = blockIdx.x / slices;
        const unsigned slice = blockIdx.x - channel * slices, count = (unsigned)n * hw;
        const unsigned chunk = (count + slices - 1) / slices;
        begin = slice * chunk;
        end = min(count, begin + chunk);
    }

    extern "C" __global__ void batchnorm_partial_stats(const float* x, float* partials, int n, int c, int hw, int slices) {
        __shared__ float shared[BLOCK];
        unsigned channel, begin, end;
        channel_slice(n, hw, slices, channel, begin, end);
        const unsigned area = hw;
        const float shift = x[channel * area];  // as batchnorm_forward_training's
        float sum = 0.f, sum_sq = 0.f;
        #pragma unroll 4
        for (unsigned k = begin + threadIdx.x; k < end; k += BLOCK) {
            unsigned image = k / area, p = k - image * area;
            float v = x[(image * c + channel) * area + p] - shift;
            sum += v; sum_sq += v * v;
        }
        sum = block_sum(sum, shared);
        sum_sq = block_sum(sum_sq, shared);
        if (threadIdx.x == 0) { partials[2 * blockIdx.x] = sum; partials[2 * blockIdx.x + 1] = sum_sq; }
    }

    extern "C" __global__ void batchnorm_finish_stats(const float* x, const float* partials, float* mean_out, float* inv_std_out,
            float* running_mean, float* running_var, int c, int slices, int n, int hw, float eps, float momentum,
            const float* input_bias) {
        const unsigned count = (unsigned)n * hw;
        for (int channel = blockIdx.x * blockDim.x + threadIdx.x; channel < c; channel += gridDim.x * blockDim.x) {
            float sum = 0.f, sum_sq = 0.f;
            for (int k = 0; k < slices; k++) {
                sum += partials[2 * (channel * slices + k)];
                sum_sq += partials[2 * (channel * slices + k) + 1];
            }
            // The partial sums are of the values less the channel's first (batchnorm_partial_stats).
            float shifted_mean = sum / count, mean = x[channel * hw] + shifted_mean;
            float variance = fmaxf(sum_sq / count - shifted_mean * shifted_mean, 0.f);
            mean_out[channel] = mean;
            inv_std_out[channel] = rsqrtf(variance + eps);
            float unbiased = count > 1 ? variance * count / (count - 1) : variance;
            float model_mean = input_bias ? mean + input_bias[channel] : mean;  // as batchnorm_forward_training's
            running_mean[channel] = (1.f - momentum) * running_mean[channel] + momentum * model_mean;
            running_var[channel] = (1.f - momentum) * running_var[channel] + momentum * unbiased;
        }
    }

    // xhat = (x - mean) * inv_std (kept), y = act(gamma * xhat + beta): element-wise.
    extern "C" __global__ void batchnorm_normalize(const float* x, float* y, float* xhat, const float* gamma, const float* beta,
            const float* mean, const float* inv_std, int n, int c, int hw, int activation, float slope,
            const float* class_scale, const float* class_shift, const int* labels, int plane) {
        const unsigned total = (unsigned)n * c * hw;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
            unsigned channel = (i / hw) % c;
            float h = (x[i] - mean[channel]) * inv_std[channel];
            xhat[i] = h;
            float out = class_affine(gamma[channel] * h + beta[channel], class_scale, class_shift, labels,
                                     class_scale ? channel_position(i, c, hw) : 0, plane, c, channel);
            y[i] = activate(out, activation, slope);
        }
    }

    // Backward in three kernels likewise: the slices' sums of d and d * xhat (d: dy through the
    // activation), then per channel dgamma, dbeta and the two means dx needs (means: 2 per
    // channel), then dx element-wise.
    extern "C" __global__ void batchnorm_partial_grad(const float* dy, const float* y, const float* xhat, float* partials,
            int n, int c, int hw, int activation, float slope, int slices, const float* class_scale, const int* labels, int plane) {
        __shared__ float shared[BLOCK];
        unsigned channel, begin, end;
        channel_slice(n, hw, slices, channel, begin, end);
        const unsigned area = hw;
        float sum_dy = 0.f, sum_dy_xhat = 0.f;
        #pragma unroll 4
        for (unsigned k = begin + threadIdx.x; k < end; k += BLOCK) {
            unsigned image = k / area, p = k - image * area, index = (image * c + channel) * area + p;
            float d = through_class_scale(through_activation(dy[index], y[index], activation, slope),
                                          class_scale, labels, k, plane, c, channel);
            sum_dy += d; sum_dy_xhat += d * xhat[index];
        }
        sum_dy = block_sum(sum_dy, shared);
        sum_dy_xhat = block_sum(sum_dy_xhat, shared);
        if (threadIdx.x == 0) { partials[2 * blockIdx.x] = sum_dy; partials[2 * blockIdx.x + 1] = sum_dy_xhat; }
    }

    extern "C" __global__ void batchnorm_finish_grad(const float* partials, const float* gamma, float* dgamma, float* dbeta,
            float* means, int c, int slices, int n, int hw) {
        const unsigned count = (unsigned)n * hw;
        for (int channel = blockIdx.x * blockDim.x + threadIdx.x; channel < c; channel += gridDim.x * blockDim.x) {
            float sum_dy = 0.f, sum_dy_xhat = 0.f;
            for (int k = 0; k < slices; k++) {
                sum_dy += partials[2 * (channel * slices + k)];
                sum_dy_xhat += partials[2 * (channel * slices + k) + 1];
            }
            dgamma[channel] += sum_dy_xhat;
            dbeta[channel] += sum_dy;
            means[2 * channel] = gamma[channel] * sum_dy / count;
            means[2 * channel + 1] = gamma[channel] * sum_dy_xhat / count;
        }
    }

    extern "C" __global__ void batchnorm_input_grad(const float* dy, const float* y, const float* xhat, const float* gamma,
            const float* inv_std, const float* means, float* dx, int n, int c, int hw, int activation, float slope,
            const float* class_scale, const int* labels, int plane) {
        const unsigned total = (unsigned)n * c * hw;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
            unsigned channel = (i / hw) % c;
            float d = through_class_scale(through_activation(dy[i], y[i], activation, slope),
                                          class_scale, labels, class_scale ? channel_position(i, c, hw) : 0, plane, c, channel);
            dx[i] = inv_std[channel] * (gamma[channel] * d - means[2 * channel] - xhat[i] * means[2 * channel + 1]);
        }
    }

    // For sampling with given statistics (standing ones): y = act(gamma * (x - mean) * inv_std
    // + beta) element-wise, nothing kept. (With the batch's own statistics, sampling runs the
    // training kernel with momentum 0: the running averages stay as they are.)
    extern "C" __global__ void batchnorm_apply(const float* x, float* y, const float* gamma, const float* beta,
                                               const float* mean, const float* inv_std, long n, int c, long hw,
                                               int activation, float slope, const float* class_scale,
                                               const float* class_shift, const int* labels, int plane) {
        // 32-bit indices (the host checks the count): generation runs this on every G layer.
        const unsigned count = (unsigned)(n * c * hw), area = (unsigned)hw, channels = (unsigned)c;
        for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
            unsigned channel = (i / area) % channels;
            float out = gamma[channel] * (x[i] - mean[channel]) * inv_std[channel] + beta[channel];
            out = class_affine(out, class_scale, class_shift, labels, class_scale ? channel_position(i, channels, area) : 0, plane,
                               channels, channel);
            y[i] = activate(out, activation, slope);
        }
    }

    // The class table's gradients (the class-conditional generator): block (class k, channel)
    // of classes x C sums, over the maps of the batch entries of class k, du = dy through the
    // activation and du * xhat. The class affine's input was a = gamma xhat + beta, so dscale
    // += gamma sum(du xhat) + beta sum(du), dshift += sum(du). A fixed order, no atomics.
    extern "C" __global__ void batchnorm_class_grad(const float* dy, const float* y, const float* xhat, const float* gamma,
            const float* beta, const int* labels, float* dscale, float* dshift, int batch, int c, int plane,
            int channel_major, int activation, float slope) {
        __shared__ float shared[BLOCK];
        const unsigned k = blockIdx.x / c, channel = blockIdx.x - k * c, area = plane;
        float sum = 0.f, sum_xhat = 0.f;
        for (int b = 0; b < batch; b++) {
            if (labels[b] != (int)k) continue;
            const unsigned offset = plane_of(b, channel, batch, c, channel_major) * area;
            for (unsigned j = threadIdx.x; j < area; j += BLOCK) {
                float d = through_activation(dy[offset + j], y[offset + j], activation, slope);
                sum += d; sum_xhat += d * xhat[offset + j];
            }
        }
        sum = block_sum(sum, shared);
        sum_xhat = block_sum(sum_xhat, shared);
        if (threadIdx.x == 0) {
            dscale[blockIdx.x] += gamma[channel] * sum_xhat + beta[channel] * sum;
            dshift[blockIdx.x] += sum;
        }
    }
    """#, functions: ["batchnorm_forward_training", "batchnorm_backward_training", "batchnorm_apply",
                      "batchnorm_partial_stats", "batchnorm_finish_stats", "batchnorm_normalize",
                      "batchnorm_partial_grad", "batchnorm_finish_grad", "batchnorm_input_grad", "batchnorm_class_grad"])
}
