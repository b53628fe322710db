// Fused SGD-with-momentum step over a flat float32 parameter buffer (PyTorch's SGD):
//   g   <- -g if maximize
//   g   <- g + weight_decay * p
//   buf <- g                                   on the first step (first_step != 0)
//   buf <- momentum * buf + (1 - dampening) * g  afterwards
//   d   <- g + momentum * buf if nesterov else buf
//   p   <- p - lr * d
#include "dtorch_kernels.cuh"

DT_HD void sgd_momentum_element(float* p, float g, float* buf, float lr, float momentum, float dampening,
                                float weight_decay, int nesterov, int maximize, int first_step) {
    if (maximize) g = -g;
    if (weight_decay != 0.0f) g = g + weight_decay * *p;
    if (first_step) *buf = g;
    else *buf = momentum * *buf + (1.0f - dampening) * g;
    float direction = nesterov ? g + momentum * *buf : *buf;
    *p = *p - lr * direction;
}

#ifdef __CUDACC__
extern "C" __global__ void sgd_momentum_step_f32(float* p, const float* g, float* buf, long long n, float lr,
                                                 float momentum, float dampening, float weight_decay,
                                                 int nesterov, int maximize, int first_step) {
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        sgd_momentum_element(&p[i], g[i], &buf[i], lr, momentum, dampening, weight_decay, nesterov, maximize,
                             first_step);
    }
}
#endif
