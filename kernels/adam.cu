// Fused Adam / AdamW step over a flat float32 parameter buffer: one pass reads p, g, m, v once and writes p, m, v
// once, where the xp reference, dtorch.optim.adam.adam_update, makes about ten passes over the buffers.
//
// The arithmetic is adam_update's, operation for operation (so both round alike; the caller computes the scalars
// in double and rounds them to float32 as NumPy does):
//   p <- p * decay_factor                        AdamW (decoupled): decay_factor = 1 - lr * weight_decay
//   g <- -g                                      maximize
//   g <- p * weight_decay + g                    Adam (coupled L2)
//   m <- m + (g - m) * one_minus_beta1
//   v <- v * beta2 + (g * one_minus_beta2) * g
//   p <- p + (m * neg_step_size) / (sqrt(v) / bias_correction2_sqrt + eps)
//                                                 neg_step_size = -lr / (1 - beta1^t)
// AMSGrad keeps a third buffer and runs the reference.
#include "dtorch_kernels.cuh"

DT_HD void adam_element(float* p, float g, float* m, float* v, float beta2, float one_minus_beta1,
                        float one_minus_beta2, float eps, float weight_decay, float decay_factor, float neg_step_size,
                        float bias_correction2_sqrt, int decoupled, int maximize) {
    if (decoupled && weight_decay != 0.0f) *p = *p * decay_factor;
    if (maximize) g = -g;
    if (!decoupled && weight_decay != 0.0f) g = *p * weight_decay + g;
    *m = *m + (g - *m) * one_minus_beta1;
    *v = *v * beta2 + (g * one_minus_beta2) * g;
    const float denom = sqrtf(*v) / bias_correction2_sqrt + eps;
    *p = *p + (*m * neg_step_size) / denom;
}

#ifdef __CUDACC__
extern "C" __global__ void adam_step_f32(float* p, const float* g, float* m, float* v, long long n, float beta2,
                                         float one_minus_beta1, float one_minus_beta2, float eps, float weight_decay,
                                         float decay_factor, float neg_step_size, float bias_correction2_sqrt,
                                         int decoupled, int maximize) {
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        adam_element(&p[i], g[i], &m[i], &v[i], beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay,
                     decay_factor, neg_step_size, bias_correction2_sqrt, decoupled, maximize);
    }
}
#endif
