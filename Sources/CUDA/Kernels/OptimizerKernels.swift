/// Adam and the generator's moving average over every parameter in one launch each.
///
/// The GPU engine keeps a model's parameters, gradients and Adam moments in flat buffers (one
/// each), so that one launch updates them all where an eager framework launches one kernel
/// per tensor (PyTorch's fused Adam aside). Same arithmetic as `Engine/Optim/Adam.swift`:
/// bias-corrected moments; L2 weight decay added to the gradient, or decoupled (AdamW).
public enum OptimizerKernels {
    public static let source = KernelSource(name: "optimizer.cu", code: #"""
    #define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < (n); i += (long)gridDim.x * blockDim.x)

    // One parameter's update; correction1 = 1 - beta1^t, correction2 = 1 - beta2^t.
    __device__ void adam_update(float* w, const float* g, float* m, float* v, long i, float lr, float beta1, float beta2,
                                float eps, float correction1, float correction2, float weight_decay, int decoupled) {
        float grad = g[i];
        if (!decoupled) grad += weight_decay * w[i];
        float mi = beta1 * m[i] + (1.f - beta1) * grad;
        float vi = beta2 * v[i] + (1.f - beta2) * grad * grad;
        m[i] = mi; v[i] = vi;
        float update = (mi / correction1) / (sqrtf(vi / correction2) + eps);
        if (decoupled) update += weight_decay * w[i];
        w[i] -= lr * update;
    }

    // Bias corrections computed on the host for this step.
    extern "C" __global__ void adam_step(float* w, const float* g, float* m, float* v, long n,
                                         float lr, float beta1, float beta2, float eps,
                                         float correction1, float correction2, float weight_decay, int decoupled) {
        GRID_STRIDE(i, n) { adam_update(w, g, m, v, i, lr, beta1, beta2, eps, correction1, correction2, weight_decay, decoupled); }
    }

    // The same with the step count in device memory, so that a captured CUDA graph replays
    // correct bias corrections. It only reads the count: adam_advance increments it once per
    // step, after every update of that step has been launched.
    extern "C" __global__ void adam_step_device(float* w, const float* g, float* m, float* v, long n,
                                                float lr, float beta1, float beta2, float eps,
                                                const long* step, float weight_decay, int decoupled) {
        long t = *step + 1;
        float correction1 = 1.f - powf(beta1, (float)t), correction2 = 1.f - powf(beta2, (float)t);
        GRID_STRIDE(i, n) { adam_update(w, g, m, v, i, lr, beta1, beta2, eps, correction1, correction2, weight_decay, decoupled); }
    }

    extern "C" __global__ void adam_advance(long* step) { *step += 1; }

    // average = decay * average + (1 - decay) * weights
    extern "C" __global__ void ema_update(float* average, const float* weights, long n, float decay) {
        GRID_STRIDE(i, n) { average[i] = decay * average[i] + (1.f - decay) * weights[i]; }
    }

    // The same with the trainer's warm-up read from a step count in device memory (the
    // generator's Adam count, already advanced for this step): decay = min(most,
    // (1 + t) / (10 + t)), so that a captured graph replays it right.
    extern "C" __global__ void ema_update_warmup(float* average, const float* weights, long n, float most, const long* step) {
        float t = (float)*step;
        float decay = fminf(most, (1.f + t) / (10.f + t));
        GRID_STRIDE(i, n) { average[i] = decay * average[i] + (1.f - decay) * weights[i]; }
    }
    """#, functions: ["adam_step", "adam_step_device", "adam_advance", "ema_update", "ema_update_warmup"])
}
