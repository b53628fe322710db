"""The built-in DDP communication hooks: a plain average and an average in float16 (PyTorch's ``default_hooks``).

A hook is ``hook(state, bucket) -> Future``: ``state`` is what was passed to ``register_comm_hook`` (here the
process group, or None for the default group), ``bucket`` a :class:`~dtorch.distributed.algorithms.GradBucket`.
The future's callbacks run on the communication thread, so they touch raw arrays only.
"""

import numpy as np

import dtorch.distributed as dist

__all__ = ["allreduce_hook", "fp16_compress_hook", "fp16_compress_wrapper"]


def _group(process_group):
    return dist.group.WORLD if process_group is None else process_group


def _allreduce_fut(process_group, tensor):
    """Average ``tensor`` over the group in place; a Future holding it."""
    group = _group(process_group)
    tensor._array /= dist.get_world_size(group)
    work = dist.all_reduce(tensor, group=group, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


def allreduce_hook(process_group, bucket):
    """Average the bucket over the ranks: what DDP does without a hook.

    >>> ddp.register_comm_hook(None, allreduce_hook)          # doctest: +SKIP
    """
    return _allreduce_fut(process_group, bucket.buffer())


def fp16_compress_hook(process_group, bucket):
    """Send the bucket as float16 (half the bytes), average it, and write it back in the bucket's dtype.

    The result carries float16's rounding (about 3 significant digits) and saturates beyond 65504.

    >>> ddp.register_comm_hook(None, fp16_compress_hook)      # doctest: +SKIP
    """
    group = _group(process_group)
    buffer = bucket.buffer()
    compressed = buffer.to(dtype=_float16()).div_(dist.get_world_size(group))
    work = dist.all_reduce(compressed, group=group, async_op=True)

    def decompress(fut):
        buffer._array[...] = fut.value()[0]._array
        return buffer

    return work.get_future().then(decompress)


def fp16_compress_wrapper(hook):
    """Wrap a comm hook so that it runs on a float16 copy of the bucket, cast back to the bucket's dtype after.

    >>> state = PowerSGDState(None)                                                          # doctest: +SKIP
    >>> ddp.register_comm_hook(state, fp16_compress_wrapper(powerSGD_hook))                  # doctest: +SKIP
    """

    def fp16_compress_wrapper_hook(hook_state, bucket):
        original = bucket.buffer()
        bucket.set_buffer(original.to(dtype=_float16()))
        future = hook(hook_state, bucket)

        def decompress(fut):
            value = fut.value()
            value = value[0] if isinstance(value, (list, tuple)) else value
            original._array[...] = value._array.reshape(original._array.shape)
            return original

        return future.then(decompress)

    return fp16_compress_wrapper_hook


def _float16():
    from dtorch import _backend

    return _backend.from_numpy_dtype(np.dtype(np.float16))
