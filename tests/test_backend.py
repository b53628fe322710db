"""dtypes and PyTorch's promotion rules, checked against torch."""

import itertools

import pytest
import torch

import dtorch

PAIRS = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]


@pytest.mark.parametrize("a,b", list(itertools.product(PAIRS, PAIRS)))
def test_promote_types_matches_torch(a, b):
    expected = torch.promote_types(getattr(torch, a), getattr(torch, b))
    assert dtorch.promote_types(getattr(dtorch, a if a != "bool" else "bool"), getattr(dtorch, b)).name == str(
        expected
    ).replace("torch.", "")


@pytest.mark.parametrize(
    "left,right",
    [
        ("int64 [3]", 2.5),
        ("int32 [3]", 2),
        ("bool [3]", 1),
        ("bool [3]", True),
        ("float16 [3]", 2.5),
        ("float32 [3]", "float64 []"),
        ("int32 [3]", "float64 []"),
        ("int64 []", "float16 [3]"),
        ("uint8 [3]", "int8 [3]"),
        ("int8 []", "uint8 [3]"),
        ("float32 []", "float64 []"),
    ],
)
def test_binary_result_dtype_matches_torch(left, right):
    def make(lib, spec):
        if not isinstance(spec, str):
            return spec
        name, shape = spec.split()
        shape = (3,) if shape == "[3]" else ()
        return lib.ones(shape, dtype=getattr(lib, name))

    for op in ("__add__", "__mul__", "__truediv__", "__sub__"):
        if op == "__sub__" and "bool" in str(left):
            continue
        ours = getattr(make(dtorch, left), op)(make(dtorch, right))
        theirs = getattr(make(torch, left), op)(make(torch, right))
        assert ours.dtype.name == str(theirs.dtype).replace("torch.", ""), op


def test_default_dtype():
    assert dtorch.get_default_dtype() == dtorch.float32
    dtorch.set_default_dtype(dtorch.float64)
    try:
        assert dtorch.tensor([1.5]).dtype == dtorch.float64
        assert (dtorch.tensor([1]) * 0.5).dtype == dtorch.float64
        assert dtorch.zeros(1).dtype == dtorch.float64
    finally:
        dtorch.set_default_dtype(dtorch.float32)
    with pytest.raises(TypeError):
        dtorch.set_default_dtype(dtorch.int64)


def test_dtype_objects():
    assert dtorch.float is dtorch.float32 and dtorch.long is dtorch.int64 and dtorch.double is dtorch.float64
    assert repr(dtorch.float32) == "dtorch.float32"
    assert dtorch.float32.is_floating_point and not dtorch.int64.is_floating_point
    import pickle

    assert pickle.loads(pickle.dumps(dtorch.float16)) is dtorch.float16


def test_finfo_and_iinfo_match_torch():
    for name in ("float16", "float32", "float64"):
        ours, theirs = dtorch.finfo(getattr(dtorch, name)), torch.finfo(getattr(torch, name))
        for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
            assert getattr(ours, field) == getattr(theirs, field), (name, field)
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        ours, theirs = dtorch.iinfo(getattr(dtorch, name)), torch.iinfo(getattr(torch, name))
        assert (ours.bits, ours.min, ours.max, ours.dtype) == (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    assert dtorch.finfo().eps == torch.finfo().eps
    with pytest.raises(TypeError, match="floating point"):
        dtorch.finfo(dtorch.int32)
