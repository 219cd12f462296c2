/// The GAN's losses (`Engine/Losses/BinaryCrossEntropy.swift`: BCE on logits, `HingeLoss`): the mean
/// loss into one float on the device and the gradient of the mean, in one launch of one block,
/// so that the loss never leaves the GPU inside a captured step.
public enum LossKernels {
    public static let source = KernelSource(name: "loss.cu", code: #"""
    \#(KernelHelpers.blockSum)
    // D's hinge: mean(max(0, 1 - sign * logit)), sign +1 for real images, -1 for generated ones;
    // gradient -sign / n where the margin is positive, 0 at and beyond the kink.
    // out[0] = the loss, out[1] = the logits' mean (for progress reports).
    extern "C" __global__ void hinge_discriminator(const float* logits, float* gradient, float* out, long n, float sign) {
        __shared__ float partial[256];
        float sum = 0.f, logit_sum = 0.f;
        for (long i = threadIdx.x; i < n; i += blockDim.x) {
            float margin = 1.f - sign * logits[i];
            sum += fmaxf(margin, 0.f);
            logit_sum += logits[i];
            gradient[i] = margin > 0.f ? -sign / (float)n : 0.f;
        }
        float total = block_sum(sum, partial);
        float logit_total = block_sum(logit_sum, partial);
        if (threadIdx.x == 0) { out[0] = total / (float)n; out[1] = logit_total / (float)n; }
    }

    // G's hinge: -mean(logit); gradient -1 / n. out[0] = the loss, out[1] = the logits' mean.
    extern "C" __global__ void hinge_generator(const float* logits, float* gradient, float* out, long n) {
        __shared__ float partial[256];
        float sum = 0.f;
        for (long i = threadIdx.x; i < n; i += blockDim.x) {
            sum += logits[i];
            gradient[i] = -1.f / (float)n;
        }
        float total = block_sum(sum, partial);
        if (threadIdx.x == 0) { out[0] = -total / (float)n; out[1] = total / (float)n; }
    }

    // Binary cross-entropy on logits against a constant target (1: real, 0: generated), as
    // BinaryCrossEntropyWithLogits: mean(max(x, 0) - x t + log(1 + e^-|x|)), gradient
    // (sigmoid(x) - t) / n. out[0] = the loss, out[1] = the logits' mean (for progress reports).
    extern "C" __global__ void bce_logits(const float* logits, float* gradient, float* out, long n, float target) {
        __shared__ float partial[256];
        float loss = 0.f, sum = 0.f;
        for (long i = threadIdx.x; i < n; i += blockDim.x) {
            float x = logits[i];
            loss += fmaxf(x, 0.f) - x * target + log1pf(expf(-fabsf(x)));
            float s = x >= 0.f ? 1.f / (1.f + expf(-x)) : expf(x) / (1.f + expf(x));
            gradient[i] = (s - target) / (float)n;
            sum += x;
        }
        float total = block_sum(loss, partial);
        float logit_sum = block_sum(sum, partial);
        if (threadIdx.x == 0) { out[0] = total / (float)n; out[1] = logit_sum / (float)n; }
    }

    // One half of LeCam's term in D's loss (`LeCamRegularization`), after that half's loss
    // kernel: weight * mean relu(sign * (logit - anchors[1 - own]))^2 into out[0], its gradient
    // added to `gradient`; then the half's own anchor moves toward the logits' mean:
    // anchors[own] = decay * anchors[own] + (1 - decay) * mean. anchors: {real, fake}; the real
    // half is own = 0, sign +1, the generated half own = 1, sign -1.
    extern "C" __global__ void lecam_part(const float* logits, float* gradient, float* anchors, float* out, long n,
                                          float weight, float decay, float sign, int own) {
        __shared__ float partial[256];
        float anchor = anchors[1 - own], sum = 0.f, logit_sum = 0.f;
        for (long i = threadIdx.x; i < n; i += blockDim.x) {
            float excess = sign * (logits[i] - anchor);
            if (excess > 0.f) {
                sum += excess * excess;
                gradient[i] += 2.f * weight * sign * excess / (float)n;
            }
            logit_sum += logits[i];
        }
        float total = block_sum(sum, partial);
        float logit_total = block_sum(logit_sum, partial);
        if (threadIdx.x == 0) {
            out[0] = weight * total / (float)n;
            anchors[own] = decay * anchors[own] + (1.f - decay) * (logit_total / (float)n);
        }
    }

    // Consistency regularisation, L_cr = weight * mean_i (t_i - r_i)^2 with t = D(T(x)) and
    // r = D(x) (`ConsistencyRegularization`), in three launches around D's passes:
    // consistency_keep copies t (D's output buffer is overwritten by the real pass);
    // consistency_real_part, with r, turns kept into the differences d = t - r, adds
    // dL/dr = -2 weight d / n to the real pass's gradient and writes L_cr; after the real
    // backward, consistency_translated_gradient sets the gradient of D's second pass on T(x):
    // dL/dt = 2 weight d / n.
    extern "C" __global__ void consistency_keep(const float* logits, float* kept, long n) {
        for (long i = threadIdx.x; i < n; i += blockDim.x) kept[i] = logits[i];
    }

    extern "C" __global__ void consistency_real_part(const float* real_logits, float* kept, float* gradient, float* out,
                                                     long n, float weight) {
        __shared__ float partial[256];
        float sum = 0.f;
        for (long i = threadIdx.x; i < n; i += blockDim.x) {
            float d = kept[i] - real_logits[i];
            kept[i] = d;
            sum += d * d;
            gradient[i] -= 2.f * weight * d / (float)n;
        }
        float total = block_sum(sum, partial);
        if (threadIdx.x == 0) out[0] = weight * total / (float)n;
    }

    extern "C" __global__ void consistency_translated_gradient(const float* differences, float* gradient, long n, float weight) {
        for (long i = threadIdx.x; i < n; i += blockDim.x) gradient[i] = 2.f * weight * differences[i] / (float)n;
    }

    // The mode-seeking term in G's loss (`ModeSeekingRegularization`), in two launches after G's
    // output gradient is in place: mode_seeking_sums, one block, writes the pairs' mean image
    // distance and mean code distance, sums = {mean|x_i - x_{i+h}|, mean|z_i - z_{i+h}|} over the
    // pairs (i, i + h), h = batch / 2; mode_seeking_gradient, over h * per elements, adds
    // dL/dx = -weight / (lz + eps)^2 * sign(x_i - x_{i+h}) / (h * per * code) to the first of a
    // pair and its negative to the second, lz = image / code, and writes L = weight / (lz + eps).
    extern "C" __global__ void mode_seeking_sums(const float* fake, const float* z, float* sums, long per, long latent, int half) {
        __shared__ float partial[256];
        float image = 0.f, code = 0.f;
        // Image i's partner is h images on: element j of the first half pairs with j + h * per.
        long images = half * per, codes = half * latent;
        for (long i = threadIdx.x; i < images; i += blockDim.x) image += fabsf(fake[i] - fake[i + images]);
        for (long i = threadIdx.x; i < codes; i += blockDim.x) code += fabsf(z[i] - z[i + codes]);
        float image_total = block_sum(image, partial);
        float code_total = block_sum(code, partial);
        if (threadIdx.x == 0) { sums[0] = image_total / (float)images; sums[1] = code_total / (float)codes; }
    }

    extern "C" __global__ void mode_seeking_gradient(const float* fake, const float* sums, float* gradient, float* out,
                                                     long per, int half, float weight, float eps) {
        float code = sums[1];
        if (!(code > 0.f)) { if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = 0.f; return; }
        float denominator = sums[0] / code + eps;
        long images = half * per;
        float scale = -weight / (denominator * denominator) / ((float)images * code);
        for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < images; i += (long)gridDim.x * blockDim.x) {
            float difference = fake[i] - fake[i + images];
            float part = difference > 0.f ? scale : difference < 0.f ? -scale : 0.f;
            gradient[i] += part;
            gradient[i + images] -= part;
        }
        if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = weight / denominator;
    }

    // A step's `width` loss values into slot (*step % slots) of a ring of slots x width, so that
    // the host reads many steps' losses in one copy instead of synchronising after every step.
    extern "C" __global__ void record_losses(const float* losses, float* ring, const unsigned long long* step, int slots,
                                             int width) {
        float* slot = ring + (long)(*step % (unsigned long long)slots) * width;
        for (int i = threadIdx.x; i < width; i += blockDim.x) slot[i] = losses[i];
    }
    """#, functions: ["hinge_discriminator", "hinge_generator", "bce_logits", "lecam_part", "consistency_keep",
                      "consistency_real_part", "consistency_translated_gradient", "mode_seeking_sums",
                      "mode_seeking_gradient", "record_losses"])

    /// Threads of the one block each loss kernel runs as.
    public static let block = 256
}
