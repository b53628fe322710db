// Host index loops around the kernels' DT_HD arithmetic, so g++ can run the same per-element and per-row math
// that the CUDA kernels run (see kernels/dtorch_kernels.cuh). The loops mirror the kernels' loops; the tests
// compare what they compute with dtorch._kernels' NumPy references.
#include "adam.cu"
#include "sgd.cu"
#include "softmax_cross_entropy.cu"
#include "layer_norm.cu"
#include "bucket.cu"

extern "C" {

void host_adam_step(float* p, const float* g, float* m, float* v, long long n, float beta2, float one_minus_beta1,
                    float one_minus_beta2, float eps, float weight_decay, float decay_factor, float neg_step_size,
                    float bias_correction2_sqrt, int decoupled, int maximize) {
    for (long long i = 0; i < n; ++i) {
        adam_element(&p[i], g[i], &m[i], &v[i], beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay,
                     decay_factor, neg_step_size, bias_correction2_sqrt, decoupled, maximize);
    }
}

void host_sgd_momentum_step(float* p, const float* g, float* buf, long long n, float neg_lr, float momentum,
                            float dampening, float one_minus_dampening, float weight_decay, int nesterov,
                            int maximize, int first_step) {
    for (long long i = 0; i < n; ++i) {
        sgd_momentum_element(&p[i], g[i], &buf[i], neg_lr, momentum, dampening, one_minus_dampening, weight_decay,
                             nesterov, maximize, first_step);
    }
}

void host_softmax_xent_forward(const float* logits, const long long* targets, float* loss, float* lse_out,
                               long long rows, long long classes, long long ignore_index) {
    for (long long r = 0; r < rows; ++r) {
        const float* row = logits + r * classes;
        const long long t = targets[r];
        const float lse = xent_row_lse(row, classes);
        lse_out[r] = t == ignore_index ? 0.0f : lse;
        loss[r] = t == ignore_index ? 0.0f : xent_row_loss(lse, row[t]);
    }
}

void host_softmax_xent_backward(const float* logits, const long long* targets, const float* lse, const float* dloss,
                                float* dlogits, long long rows, long long classes, long long ignore_index) {
    for (long long i = 0; i < rows * classes; ++i) {
        const long long r = i / classes;
        const long long j = i - r * classes;
        const long long t = targets[r];
        dlogits[i] = t == ignore_index ? 0.0f : xent_grad_element(logits[i], lse[r], j == t, dloss[r]);
    }
}

void host_layer_norm_forward(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd,
                             long long rows, long long features, float eps) {
    for (long long r = 0; r < rows; ++r) {
        layer_norm_row_stats(x + r * features, features, eps, &mean[r], &rstd[r]);
        for (long long j = 0; j < features; ++j) {
            y[r * features + j] = layer_norm_element(x[r * features + j], mean[r], rstd[r], w[j], b[j]);
        }
    }
}

void host_layer_norm_backward(const float* x, const float* dy, const float* w, const float* mean, const float* rstd,
                              float* dx, float* dw, float* db, long long rows, long long features) {
    for (long long r = 0; r < rows; ++r) {
        layer_norm_row_backward(x + r * features, dy + r * features, w, mean[r], rstd[r], features, dx + r * features);
    }
    for (long long j = 0; j < features; ++j) {
        layer_norm_column_backward(x, dy, mean, rstd, rows, features, j, &dw[j], &db[j]);
    }
}

void host_bucket_pack(const float* const* sources, const long long* offsets, long long count, float* bucket,
                      float scale) {
    for (long long i = 0; i < offsets[count]; ++i) {
        const long long k = bucket_tensor_of(offsets, count, i);
        bucket[i] = bucket_scale_element(sources[k][i - offsets[k]], scale);
    }
}

void host_bucket_unpack(const float* bucket, float* const* targets, const long long* offsets, long long count,
                        float scale) {
    for (long long i = 0; i < offsets[count]; ++i) {
        const long long k = bucket_tensor_of(offsets, count, i);
        targets[k][i - offsets[k]] = bucket_scale_element(bucket[i], scale);
    }
}

}  // extern "C"
