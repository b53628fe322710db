// Softmax + cross-entropy over the rows of a float32 (rows, classes) logits matrix, forward and backward in
// one pass each, where the xp reference makes a log_softmax, a gather and a scatter.
//
// Forward, per row r with target t (ignored rows, t == ignore_index, give loss 0 and lse 0):
//   lse[r]  = max_j x[r,j] + log(sum_j exp(x[r,j] - max_j x[r,j]))
//   loss[r] = lse[r] - x[r,t]
// Backward, per element, with the row's upstream gradient dloss[r]:
//   dx[r,j] = dloss[r] * (exp(x[r,j] - lse[r]) - (j == t))      (0 for ignored rows)
// One thread block per row; the max and the sum are block reductions in shared memory.
#include "dtorch_kernels.cuh"

DT_HD float xent_row_loss(float lse, float target_logit) { return lse - target_logit; }

DT_HD float xent_grad_element(float x, float lse, int is_target, float dloss) {
    return dloss * (expf(x - lse) - (is_target ? 1.0f : 0.0f));
}

// Sequential log-sum-exp of one row: the host reference of the block reduction below.
DT_HD float xent_row_lse(const float* row, long long classes) {
    float row_max = -DT_INFINITY;
    for (long long j = 0; j < classes; ++j) row_max = fmaxf(row_max, row[j]);
    if (isinf(row_max)) return row_max;  // all -inf (lse -inf) or a +inf logit (lse +inf): as log_softmax does
    float total = 0.0f;
    for (long long j = 0; j < classes; ++j) total += expf(row[j] - row_max);
    return row_max + logf(total);
}

#ifdef __CUDACC__
#define XENT_THREADS 256

extern "C" __global__ void softmax_xent_forward_f32(const float* logits, const long long* targets, float* loss,
                                                    float* lse_out, long long classes, long long ignore_index) {
    __shared__ float scratch[XENT_THREADS];
    const long long r = blockIdx.x;
    const float* row = logits + r * classes;
    float local_max = -DT_INFINITY;
    for (long long j = threadIdx.x; j < classes; j += blockDim.x) local_max = fmaxf(local_max, row[j]);
    scratch[threadIdx.x] = local_max;
    __syncthreads();
    for (int width = blockDim.x / 2; width > 0; width /= 2) {
        if (threadIdx.x < width) scratch[threadIdx.x] = fmaxf(scratch[threadIdx.x], scratch[threadIdx.x + width]);
        __syncthreads();
    }
    const float row_max = scratch[0];
    __syncthreads();
    float local_sum = 0.0f;
    if (!isinf(row_max)) {
        for (long long j = threadIdx.x; j < classes; j += blockDim.x) local_sum += expf(row[j] - row_max);
    }
    scratch[threadIdx.x] = local_sum;
    __syncthreads();
    for (int width = blockDim.x / 2; width > 0; width /= 2) {
        if (threadIdx.x < width) scratch[threadIdx.x] += scratch[threadIdx.x + width];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const float lse = isinf(row_max) ? row_max : row_max + logf(scratch[0]);
        const long long t = targets[r];
        const int ignored = t == ignore_index;
        lse_out[r] = ignored ? 0.0f : lse;
        loss[r] = ignored ? 0.0f : xent_row_loss(lse, row[t]);
    }
}

extern "C" __global__ void softmax_xent_backward_f32(const float* logits, const long long* targets,
                                                     const float* lse, const float* dloss, float* dlogits,
                                                     long long rows, long long classes, long long ignore_index) {
    long long n = rows * classes;
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        long long r = i / classes;
        long long j = i - r * classes;
        long long t = targets[r];
        dlogits[i] = t == ignore_index ? 0.0f : xent_grad_element(logits[i], lse[r], j == t, dloss[r]);
    }
}
#endif
