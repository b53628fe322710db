// DDP gradient buckets: pack many gradients into one flat buffer and unpack the reduced buffer back into the
// gradients, each scaled on the way (by 1/world_size, so the all_reduce's sum becomes the mean), one launch each
// instead of one copy per parameter.
//
// The tensors are described by two device arrays: their base addresses (as 64-bit integers) and their start
// offsets in the bucket, with offsets[count] = the bucket's length. Element i of the bucket belongs to the
// tensor k with offsets[k] <= i < offsets[k + 1], found by binary search.
#include "dtorch_kernels.cuh"

DT_HD long long bucket_tensor_of(const long long* offsets, long long count, long long i) {
    long long low = 0;
    long long high = count - 1;
    while (low < high) {  // the last k with offsets[k] <= i
        long long mid = (low + high + 1) / 2;
        if (offsets[mid] <= i) low = mid;
        else high = mid - 1;
    }
    return low;
}

DT_HD float bucket_scale_element(float value, float scale) { return value * scale; }

#ifdef __CUDACC__
extern "C" __global__ void bucket_pack_f32(const unsigned long long* sources, const long long* offsets,
                                           long long count, float* bucket, float scale) {
    const long long n = offsets[count];
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const long long k = bucket_tensor_of(offsets, count, i);
        const float* source = (const float*)sources[k];
        bucket[i] = bucket_scale_element(source[i - offsets[k]], scale);
    }
}

extern "C" __global__ void bucket_unpack_f32(const float* bucket, const unsigned long long* targets,
                                             const long long* offsets, long long count, float scale) {
    const long long n = offsets[count];
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const long long k = bucket_tensor_of(offsets, count, i);
        float* target = (float*)targets[k];
        target[i - offsets[k]] = bucket_scale_element(bucket[i], scale);
    }
}
#endif
