"""``dtorch.cuda`` where no GPU is visible (every CI run): queries answer as PyTorch's CPU build does, and what
needs a GPU fails with a clear error. The peak-memory bookkeeping is tested on a stand-in pool."""

import pytest

import dtorch
from dtorch import cuda

pytestmark = pytest.mark.skipif(dtorch.cuda.is_available(), reason="checks the behaviour without a GPU")


def test_queries_without_a_gpu():
    assert cuda.is_available() is False and cuda.device_count() == 0
    assert cuda.memory_allocated() == cuda.max_memory_allocated() == cuda.memory_reserved() == 0
    cuda.reset_peak_memory_stats()  # nothing to reset, no error
    cuda.synchronize()
    cuda.empty_cache()


def test_what_needs_a_gpu_says_so():
    with pytest.raises(RuntimeError, match="no CUDA device"):
        cuda.Event(enable_timing=True)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        cuda.get_device_capability()


def test_peak_tracker_counts_the_largest_use():
    class Pool:  # CuPy's MemoryPool as far as the tracker uses it
        def __init__(self):
            self.used = 100

        def malloc(self, size):
            self.used += size
            return ("memory", size)

        def used_bytes(self):
            return self.used

    pool = Pool()
    tracker = cuda._PeakTracker(pool)
    assert tracker.peak == 100
    assert tracker.malloc(50) == ("memory", 50) and tracker.peak == 150
    pool.used = 20  # memory freed back to the pool
    tracker.malloc(10)
    assert tracker.peak == 150
