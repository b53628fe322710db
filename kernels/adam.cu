// Fused Adam / AdamW step over a flat float32 parameter buffer: one pass reads p, g, m, v once and writes
// p, m, v once, where the xp reference (dtorch._kernels.adam_step_reference) makes about ten passes.
//
// Per element (PyTorch's Adam; the caller folds the bias corrections into step_size and bias_correction2_sqrt and
// passes 1 - beta1, 1 - beta2 and 1 - lr * weight_decay computed in double, as the NumPy reference rounds them):
//   g  <- -g if maximize
//   g  <- g + weight_decay * p                      (Adam: L2 penalty in the gradient)
//   p  <- p * (1 - lr * weight_decay)               (AdamW: decoupled decay, instead of the line above)
//   m  <- beta1 * m + (1 - beta1) * g
//   v  <- beta2 * v + (1 - beta2) * g * g
//   p  <- p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
#include "dtorch_kernels.cuh"

DT_HD void adam_element(float* p, float g, float* m, float* v, float beta1, float one_minus_beta1, float beta2,
                        float one_minus_beta2, float eps, float weight_decay, float decay_factor, float step_size,
                        float bias_correction2_sqrt, int decoupled, int maximize) {
    if (maximize) g = -g;
    if (weight_decay != 0.0f) {
        if (decoupled) *p = *p * decay_factor;
        else g = g + weight_decay * *p;
    }
    *m = beta1 * *m + one_minus_beta1 * g;
    *v = beta2 * *v + one_minus_beta2 * g * g;
    float denom = sqrtf(*v) / bias_correction2_sqrt + eps;
    *p = *p - step_size * (*m / denom);
}

#ifdef __CUDACC__
extern "C" __global__ void adam_step_f32(float* p, const float* g, float* m, float* v, long long n, float beta1,
                                         float one_minus_beta1, float beta2, float one_minus_beta2, float eps,
                                         float weight_decay, float decay_factor, float step_size,
                                         float bias_correction2_sqrt, int decoupled, int maximize) {
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        adam_element(&p[i], g[i], &m[i], &v[i], beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay,
                     decay_factor, step_size, bias_correction2_sqrt, decoupled, maximize);
    }
}
#endif
