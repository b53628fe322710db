// LayerNorm over the last dimension of a float32 (rows, features) matrix, forward and backward.
//
// Forward, per row:  mean = sum(x) / F,  var = sum((x - mean)^2) / F,  rstd = 1 / sqrt(var + eps)
//                    y = (x - mean) * rstd * w + b
// Backward, per row, with xhat = (x - mean) * rstd and dxhat = dy * w:
//                    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
//   and per feature:  dw = sum_rows(dy * xhat),  db = sum_rows(dy)
// One thread per row for the row statistics and dx (rows are many, features a few hundred to a few thousand),
// one thread per feature for dw and db: no atomics, so results are deterministic.
#include "dtorch_kernels.cuh"

DT_HD void layer_norm_row_stats(const float* row, long long features, float eps, float* mean, float* rstd) {
    float total = 0.0f;
    for (long long j = 0; j < features; ++j) total += row[j];
    const float m = total / (float)features;
    float squares = 0.0f;
    for (long long j = 0; j < features; ++j) squares += (row[j] - m) * (row[j] - m);
    *mean = m;
    *rstd = 1.0f / sqrtf(squares / (float)features + eps);
}

DT_HD float layer_norm_element(float x, float mean, float rstd, float w, float b) {
    return (x - mean) * rstd * w + b;
}

DT_HD void layer_norm_row_backward(const float* x, const float* dy, const float* w, float mean, float rstd,
                                   long long features, float* dx) {
    float sum_dxhat = 0.0f;
    float sum_dxhat_xhat = 0.0f;
    for (long long j = 0; j < features; ++j) {
        const float xhat = (x[j] - mean) * rstd;
        const float dxhat = dy[j] * w[j];
        sum_dxhat += dxhat;
        sum_dxhat_xhat += dxhat * xhat;
    }
    const float mean_dxhat = sum_dxhat / (float)features;
    const float mean_dxhat_xhat = sum_dxhat_xhat / (float)features;
    for (long long j = 0; j < features; ++j) {
        const float xhat = (x[j] - mean) * rstd;
        dx[j] = rstd * (dy[j] * w[j] - mean_dxhat - xhat * mean_dxhat_xhat);
    }
}

// dw[j] and db[j] of one feature column j, summed over the rows in order (deterministic).
DT_HD void layer_norm_column_backward(const float* x, const float* dy, const float* mean, const float* rstd,
                                      long long rows, long long features, long long j, float* dw, float* db) {
    float sum_w = 0.0f;
    float sum_b = 0.0f;
    for (long long r = 0; r < rows; ++r) {
        const float g = dy[r * features + j];
        sum_w += g * (x[r * features + j] - mean[r]) * rstd[r];
        sum_b += g;
    }
    *dw = sum_w;
    *db = sum_b;
}

#ifdef __CUDACC__
extern "C" __global__ void layer_norm_forward_f32(const float* x, const float* w, const float* b, float* y,
                                                  float* mean, float* rstd, long long rows, long long features,
                                                  float eps) {
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += stride) {
        const float* row = x + r * features;
        layer_norm_row_stats(row, features, eps, &mean[r], &rstd[r]);
        for (long long j = 0; j < features; ++j) {
            y[r * features + j] = layer_norm_element(row[j], mean[r], rstd[r], w[j], b[j]);
        }
    }
}

extern "C" __global__ void layer_norm_backward_input_f32(const float* x, const float* dy, const float* w,
                                                         const float* mean, const float* rstd, float* dx,
                                                         long long rows, long long features) {
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += stride) {
        layer_norm_row_backward(x + r * features, dy + r * features, w, mean[r], rstd[r], features,
                                dx + r * features);
    }
}

extern "C" __global__ void layer_norm_backward_params_f32(const float* x, const float* dy, const float* mean,
                                                          const float* rstd, float* dw, float* db,
                                                          long long rows, long long features) {
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x; j < features; j += stride) {
        layer_norm_column_backward(x, dy, mean, rstd, rows, features, j, &dw[j], &db[j]);
    }
}
#endif
