"""PowerSGD gradient compression (Vogels et al., 2019), PyTorch's ``powerSGD_hook``.

Each gradient matrix ``M`` (a tensor viewed as ``shape[0] x rest``) of a bucket is sent as two thin factors instead
of itself: with ``Q`` (``rest x r``, random at first, then the previous iteration's: warm start)

    P = sum_ranks(M Q),  P <- orthonormalise(P),  Q = sum_ranks(M^T P),  M_avg ~ P Q^T / world

so a rank sends ``(rows + cols) * r`` numbers instead of ``rows * cols``. Vectors, and matrices that would not
shrink by ``min_compression_rate``, are averaged uncompressed. With error feedback the part of the gradient the
approximation missed is added to the next iteration's gradient. For the first ``start_powerSGD_iter`` iterations
the hook is a plain average (PowerSGD needs the early, large gradients exact to converge well).

dtorch runs the hook's three collectives in order within the hook (it returns a completed future), so a bucket
compressed with PowerSGD does not overlap with the rest of backward; the plain-average iterations do.

>>> state = PowerSGDState(process_group=None, matrix_approximation_rank=1, start_powerSGD_iter=10)
>>> ddp.register_comm_hook(state, powerSGD_hook)             # doctest: +SKIP
"""

import numpy as np

import dtorch.distributed as dist
from dtorch import _backend
from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks
from dtorch.tensor import Tensor

__all__ = ["PowerSGDState", "batched_powerSGD_hook", "powerSGD_hook"]


class PowerSGDState:
    """PowerSGD's settings and what it keeps between iterations (error feedback, warm-start ``Q`` factors).

    Args:
        process_group: the group to average over (None: the default group).
        matrix_approximation_rank: ``r``, the rank of the approximation (larger: more exact, more bytes).
        start_powerSGD_iter: iterations of plain averaging before compression starts. PyTorch requires at least 2
            with error feedback or warm start (DDP rebuilds its buckets after the first iteration); dtorch allows
            fewer, and a rebuilt bucket starts without error or ``Q``.
        min_compression_rate: compress a matrix only if that divides its size by at least this much.
        use_error_feedback: add what the approximation missed to the next gradient.
        warm_start: reuse the last iteration's ``Q`` instead of a fresh random one.
        orthogonalization_epsilon: added to norms in the orthonormalisation (0: exact; a zero column becomes 0).
        random_seed: the seed of the initial ``Q`` (the same on every rank, so the factors agree).

    >>> PowerSGDState(None, start_powerSGD_iter=2).iter
    0
    """

    def __init__(self, process_group, matrix_approximation_rank=1, start_powerSGD_iter=1_000, min_compression_rate=2,
                 use_error_feedback=True, warm_start=True, orthogonalization_epsilon=0, random_seed=0,
                 compression_stats_logging_frequency=10_000, batch_tensors_with_same_shape=False):
        if int(matrix_approximation_rank) < 1:
            raise ValueError(f"matrix_approximation_rank must be at least 1, got {matrix_approximation_rank}")
        self.process_group = process_group
        self.matrix_approximation_rank = int(matrix_approximation_rank)
        self.start_powerSGD_iter = int(start_powerSGD_iter)
        self.min_compression_rate = min_compression_rate
        self.use_error_feedback = use_error_feedback
        self.warm_start = warm_start
        self.orthogonalization_epsilon = orthogonalization_epsilon
        self.rng = np.random.RandomState(random_seed)
        self.compression_stats_logging_frequency = max(1, compression_stats_logging_frequency)
        self.batch_tensors_with_same_shape = batch_tensors_with_same_shape
        self.error_dict = {}
        self.q_memory_dict = {}
        self.bucket_parameters = {}  # bucket index -> ids of its parameters when error and Q were kept
        self.iter = 0
        self.total_numel_before_compression = 0
        self.total_numel_after_compression = 0

    def maybe_increase_iter(self, bucket):
        """Count an iteration when its last bucket has been handled."""
        if bucket.is_last():
            self.iter += 1

    def compression_stats(self):
        """``(compression rate, numel before, numel after)`` summed over the compressed iterations so far."""
        after = self.total_numel_after_compression
        rate = self.total_numel_before_compression / after if after else 0
        return rate, self.total_numel_before_compression, after


def _should_compress(rows, cols, rank, min_compression_rate):
    uncompressed, compressed = rows * cols, (rows + cols) * rank
    return compressed * min_compression_rate < uncompressed, uncompressed, compressed


def _orthogonalize(matrix, epsilon):
    """Gram-Schmidt on the columns of ``matrix``, in place."""
    xp = _backend.xp_of(matrix)
    for i in range(matrix.shape[1]):
        column = matrix[:, i]
        norm = float(xp.linalg.norm(column))
        if epsilon == 0:
            if norm == 0:
                column[...] = 0
            else:
                column /= norm
        else:
            column /= norm + epsilon
        if i + 1 < matrix.shape[1]:
            rest = matrix[:, i + 1:]
            rest -= xp.outer(column, column @ rest)


def _warm_up(state, bucket):
    """Before ``start_powerSGD_iter``: a plain average of the bucket, counting the iteration."""
    state.maybe_increase_iter(bucket)
    return default_hooks._allreduce_fut(state.process_group, bucket.buffer())

def _forget_if_rebuilt(state, bucket):
    """A bucket whose parameters changed since the last iteration (DDP rebuilds its buckets once, in the order
    gradients arrived) drops its error feedback and warm-start ``Q``: they belong to the old layout. PyTorch
    refuses ``start_powerSGD_iter`` below 2 with either one instead; dtorch allows it and starts that bucket
    afresh."""
    index = bucket.index()
    members = tuple(id(p) for p in bucket.parameters())
    if state.bucket_parameters.get(index) != members:
        state.bucket_parameters[index] = members
        state.error_dict.pop(index, None)
        state.q_memory_dict.pop(index, None)
    return index

def _add_error(state, index, array):
    """Error feedback: add the bucket's last compression error to ``array`` in place; returns a copy of the sum
    (what the compressed result is compared with afterwards), or None without error feedback."""
    if not state.use_error_feedback:
        return None
    error = state.error_dict.get(index)
    if error is not None and error.shape == array.shape:
        array += error
    return array.copy()


def _random_q(state, xp, shape, dtype):
    """A fresh orthonormal ``Q`` drawn from the state's seeded generator (the same on every rank)."""
    rng = np.random.RandomState(state.rng.randint(1_000_000_000))
    q = xp.asarray(rng.standard_normal(shape)).astype(dtype)
    _orthogonalize(q, state.orthogonalization_epsilon)
    return q

def _sum(array, group):
    dist.all_reduce(Tensor._from_array(array, None), group=group)


def _compression_setup(state, bucket):
    """What both compressed hooks start from: the group and its size, the bucket's tensor and array, the array
    module, and the bucket's index in the state (its saved factors forgotten if DDP rebuilt the buckets)."""
    group = default_hooks._group(state.process_group)
    buffer = bucket.buffer()
    flat = buffer._array
    return group, dist.get_world_size(group), buffer, flat, _backend.xp_of(flat), _forget_if_rebuilt(state, bucket)


def powerSGD_hook(state, bucket):  # noqa: N802 - PyTorch's name
    """Average the bucket with PowerSGD compression (see the module docstring).

    >>> ddp.register_comm_hook(PowerSGDState(None, start_powerSGD_iter=2), powerSGD_hook)     # doctest: +SKIP
    """
    if state.iter < state.start_powerSGD_iter:
        return _warm_up(state, bucket)
    group, world, buffer, flat, xp, index = _compression_setup(state, bucket)
    compensated = _add_error(state, index, flat)
    uncompressed, compressed = [], []
    for grad in bucket.gradients():
        array = grad._array
        rows = array.shape[0] if array.ndim else 1
        matrix = array.reshape(rows, -1)
        rank = min(rows, matrix.shape[1], state.matrix_approximation_rank)
        ok, before, after = _should_compress(rows, matrix.shape[1], rank, state.min_compression_rate)
        state.total_numel_before_compression += before
        if array.ndim > 1 and ok:
            compressed.append((matrix, rank))
            state.total_numel_after_compression += after
        else:
            uncompressed.append(array)
            state.total_numel_after_compression += before
    # vectors and incompressible matrices: one plain average, started first so it runs beside the factors' math
    plain = xp.concatenate([a.reshape(-1) for a in uncompressed]) if uncompressed else None
    plain_work = last_work = (dist.all_reduce(Tensor._from_array(plain, None), group=group, async_op=True)
                              if plain is not None else None)
    if compressed:
        qs = state.q_memory_dict.get(index)
        fresh = not state.warm_start or qs is None or len(qs) != len(compressed)
        if fresh:
            qs = [_random_q(state, xp, (matrix.shape[1], rank), matrix.dtype) for matrix, rank in compressed]
            state.q_memory_dict[index] = qs
        ps = [matrix @ q for (matrix, _), q in zip(compressed, qs)]
        p_flat = xp.concatenate([p.reshape(-1) for p in ps])
        _sum(p_flat, group)
        offset = 0
        for i, p in enumerate(ps):
            ps[i] = p_flat[offset:offset + p.size].reshape(p.shape)
            offset += p.size
            _orthogonalize(ps[i], state.orthogonalization_epsilon)
        q_new = [matrix.T @ p for (matrix, _), p in zip(compressed, ps)]
        q_flat = xp.concatenate([q.reshape(-1) for q in q_new])
        last_work = dist.all_reduce(Tensor._from_array(q_flat, None), group=group, async_op=True)
        last_work.wait()
        offset = 0
        kept = []
        for (matrix, _), p, q in zip(compressed, ps, q_new):
            q = q_flat[offset:offset + q.size].reshape(q.shape)
            offset += q.size
            kept.append(q.copy())
            matrix[...] = (p @ q.T) / world
        state.q_memory_dict[index] = kept
    if plain_work is not None:
        plain_work.wait()
        plain /= world
        offset = 0
        for array in uncompressed:
            array[...] = plain[offset:offset + array.size].reshape(array.shape)
            offset += array.size
    if state.use_error_feedback:
        state.error_dict[index] = compensated - flat
    state.maybe_increase_iter(bucket)
    # the work is done: chaining on its future gives a completed future that holds the bucket
    return last_work.get_future().then(lambda fut: buffer)


def batched_powerSGD_hook(state, bucket):  # noqa: N802 - PyTorch's name
    """PowerSGD on the whole bucket at once: the flat buffer, zero-padded to ``n * n``, is one ``n x n`` matrix.

    Fewer, larger matrix products than :func:`powerSGD_hook` (one per bucket instead of one per gradient), at the
    cost of a coarser approximation; usually wants a larger ``matrix_approximation_rank``. Vectors are not kept
    apart. Same state, same error feedback and warm start.

    >>> state = PowerSGDState(None, matrix_approximation_rank=4)
    >>> ddp.register_comm_hook(state, batched_powerSGD_hook)                    # doctest: +SKIP
    """
    if state.iter < state.start_powerSGD_iter:
        return _warm_up(state, bucket)
    group, world, buffer, flat, xp, index = _compression_setup(state, bucket)
    side = int(np.ceil(np.sqrt(flat.size)))
    padded = xp.zeros(side * side, dtype=flat.dtype)
    padded[:flat.size] = flat
    compensated = _add_error(state, index, padded)
    matrix = padded.reshape(side, side)
    rank = min(side, state.matrix_approximation_rank)
    state.total_numel_before_compression += flat.size
    state.total_numel_after_compression += 2 * side * rank
    q = state.q_memory_dict.get(index)
    if not state.warm_start or q is None or q.shape != (side, rank):
        q = _random_q(state, xp, (side, rank), flat.dtype)
    p = matrix @ q
    _sum(p, group)
    _orthogonalize(p, state.orthogonalization_epsilon)
    q = matrix.T @ p
    work = dist.all_reduce(Tensor._from_array(q, None), group=group, async_op=True)
    work.wait()
    state.q_memory_dict[index] = q.copy()
    matrix[...] = (p @ q.T) / world
    if state.use_error_feedback:
        state.error_dict[index] = compensated - padded
    flat[...] = padded[:flat.size]
    state.maybe_increase_iter(bucket)
    return work.get_future().then(lambda fut: buffer)
