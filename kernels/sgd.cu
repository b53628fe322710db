// Fused SGD-with-momentum step over a flat float32 parameter buffer. The xp reference is
// dtorch.optim.sgd.sgd_update; the arithmetic below is its, operation for operation (momentum != 0):
//   g   <- -g                                       maximize
//   g   <- p * weight_decay + g
//   buf <- g                                        first step (the buffer is created from the gradient)
//   buf <- buf * momentum + g                       dampening == 0
//   buf <- buf * momentum + g * one_minus_dampening otherwise
//   d   <- buf * momentum + g                       nesterov, else d <- buf
//   p   <- p + d * neg_lr
#include "dtorch_kernels.cuh"

DT_HD void sgd_momentum_element(float* p, float g, float* buf, float neg_lr, float momentum, float dampening,
                                float one_minus_dampening, float weight_decay, int nesterov, int maximize,
                                int first_step) {
    if (maximize) g = -g;
    if (weight_decay != 0.0f) g = *p * weight_decay + g;
    if (first_step) *buf = g;
    else if (dampening == 0.0f) *buf = *buf * momentum + g;
    else *buf = *buf * momentum + g * one_minus_dampening;
    const float direction = nesterov ? *buf * momentum + g : *buf;
    *p = *p + direction * neg_lr;
}

#ifdef __CUDACC__
extern "C" __global__ void sgd_momentum_step_f32(float* p, const float* g, float* buf, long long n, float neg_lr,
                                                 float momentum, float dampening, float one_minus_dampening,
                                                 float weight_decay, int nesterov, int maximize, int first_step) {
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        sgd_momentum_element(&p[i], g[i], &buf[i], neg_lr, momentum, dampening, one_minus_dampening, weight_decay,
                             nesterov, maximize, first_step);
    }
}
#endif
