"""``dtorch.testing``: ``assert_close``, PyTorch's comparison for tests, with its default tolerances per dtype.

>>> import dtorch
>>> dtorch.testing.assert_close(dtorch.tensor([1.0, 2.0]), dtorch.tensor([1.0, 2.0 + 1e-7]))
"""

import numpy as np

from dtorch import _backend
from dtorch.tensor import Tensor

_BFLOAT16 = _backend.BFLOAT16_NUMPY

# (rtol, atol) by dtype name, as PyTorch's defaults; exact comparison for other dtypes
DEFAULT_TOLERANCES = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5),
                      "float64": (1e-7, 1e-7)}


def _as_array(value):
    if isinstance(value, Tensor):
        return value.detach().cpu()._array  # not numpy(): that refuses bfloat16, as PyTorch's does
    return np.asarray(value)


def assert_close(actual, expected, *, rtol=None, atol=None, equal_nan=False, check_dtype=True, msg=None):
    """Raise AssertionError unless ``|actual - expected| <= atol + rtol * |expected|`` everywhere (and the shapes,
    and by default the dtypes, agree). Nested lists, tuples and dicts are compared item by item."""
    if isinstance(actual, dict):
        if actual.keys() != expected.keys():
            raise AssertionError(f"The keys of the mappings do not match: {sorted(actual)} != {sorted(expected)}")
        for key in actual:
            assert_close(actual[key], expected[key], rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_dtype=check_dtype, msg=msg)
        return
    if isinstance(actual, (list, tuple)) and not isinstance(expected, Tensor):
        if len(actual) != len(expected):
            raise AssertionError(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan, check_dtype=check_dtype, msg=msg)
        return
    a, e = _as_array(actual), _as_array(expected)
    if a.shape != e.shape:
        raise AssertionError(msg or f"The values for attribute 'shape' do not match: {list(a.shape)} != "
                                    f"{list(e.shape)}.")
    if check_dtype and isinstance(actual, Tensor) and isinstance(expected, Tensor) and a.dtype != e.dtype:
        raise AssertionError(msg or f"The values for attribute 'dtype' do not match: {actual.dtype} != "
                                    f"{expected.dtype}.")
    default_rtol, default_atol = DEFAULT_TOLERANCES.get(str(a.dtype), (0.0, 0.0))
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    if a.dtype == _BFLOAT16 or e.dtype == _BFLOAT16:  # compared in float32: bfloat16 arithmetic would round the test
        a, e = a.astype(np.float32), e.astype(np.float32)
    close = np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if close.all():
        return
    bad = ~close
    difference = np.abs(a.astype(np.float64) - e.astype(np.float64))
    worst = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(difference, nan=np.inf), -1)), a.shape)
    raise AssertionError(msg or (
        f"Tensor-likes are not close!\n\nMismatched elements: {int(bad.sum())} / {a.size} "
        f"({100.0 * bad.sum() / max(a.size, 1):.1f}%)\nGreatest absolute difference: {difference[worst]} at index "
        f"{tuple(int(i) for i in worst)} (up to {atol} allowed)\nrtol={rtol}, atol={atol}"))
