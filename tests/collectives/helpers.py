"""Seeded per-rank data and NumPy references for collective tests: every rank can compute every rank's input."""

import functools

import numpy as np

from dtorch.collectives.base import ReduceOp

DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool"]


def rank_data(rank, shape, dtype, seed=0, op=None):
    """Rank ``rank``'s input: small values (products stay exact), the same on every rank that asks."""
    rng = np.random.default_rng(1000 * seed + rank)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        low = 1 if op is ReduceOp.PRODUCT else 0
        return rng.integers(low, 4 if op is ReduceOp.PRODUCT else 50, size=shape).astype(dtype)
    if op is ReduceOp.PRODUCT:
        return rng.uniform(0.5, 1.5, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


_NUMPY = {
    ReduceOp.SUM: np.add, ReduceOp.AVG: np.add, ReduceOp.PRODUCT: np.multiply, ReduceOp.MIN: np.minimum,
    ReduceOp.MAX: np.maximum, ReduceOp.BAND: np.bitwise_and, ReduceOp.BOR: np.bitwise_or,
    ReduceOp.BXOR: np.bitwise_xor,
}


def reference(arrays, op):
    """What reducing ``arrays`` (one per rank) with ``op`` gives."""
    if arrays[0].dtype == np.bool_:
        fn = {ReduceOp.SUM: np.logical_or, ReduceOp.MAX: np.logical_or, ReduceOp.BOR: np.logical_or,
              ReduceOp.PRODUCT: np.logical_and, ReduceOp.MIN: np.logical_and, ReduceOp.BAND: np.logical_and,
              ReduceOp.BXOR: np.logical_xor}[op]
        return functools.reduce(fn, arrays)
    wide = [a.astype(np.float64) if a.dtype == np.float16 else a for a in arrays]
    out = functools.reduce(_NUMPY[op], wide)
    if op is ReduceOp.AVG:
        out = out / len(arrays)
    return out.astype(arrays[0].dtype)


def valid(op, dtype):
    """Whether ``op`` is defined for ``dtype`` (PyTorch's and MPI's rules)."""
    kind = np.dtype(dtype).kind
    if op is ReduceOp.AVG:
        return kind == "f"
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR):
        return kind in "iub"
    return True


def assert_close(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    if actual.dtype.kind == "f":
        tol = 2e-2 if actual.dtype == np.float16 else 1e-5
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(actual, expected)


class FakeDeviceArray:
    """A stand-in for a CuPy array (``__cuda_array_interface__``, ``get``, ``set``): tests host staging on CPU."""

    def __init__(self, host):
        self._host = np.array(host, copy=True, order="C")
        self.gets = 0
        self.sets = 0

    @property
    def __cuda_array_interface__(self):
        return {"shape": self._host.shape, "typestr": self._host.dtype.str, "data": (0, False), "version": 3}

    shape = property(lambda self: self._host.shape)
    dtype = property(lambda self: self._host.dtype)
    size = property(lambda self: self._host.size)
    flags = property(lambda self: self._host.flags)

    def get(self):
        self.gets += 1
        return self._host.copy()

    def set(self, host):
        self.sets += 1
        self._host[...] = host
