"""The legacy tensor types construct, check and cast like PyTorch's."""

import numpy as np
import pytest
import torch

import dtorch

NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor", "CharTensor",
         "ByteTensor", "BoolTensor"]


@pytest.mark.parametrize("name", NAMES)
def test_constructors_and_isinstance_match_torch(name):
    for lib in (dtorch, torch):
        kind = getattr(lib, name)
        assert tuple(kind(2, 3).shape) == (2, 3)
        assert tuple(kind().shape) == (0,)
        assert tuple(kind(lib.Size([4])).shape) == (4,)
        made = kind([1, 0, 1])
        assert str(made.dtype).split(".")[1] == str(getattr(torch, name)([1]).dtype).split(".")[1]
        assert isinstance(made, kind)
        assert isinstance(lib.ones(2, dtype=made.dtype), kind)
        assert not isinstance(lib.ones(2, dtype=lib.float64 if name != "DoubleTensor" else lib.float32), kind)
    np.testing.assert_array_equal(getattr(dtorch, name)([1, 0, 1]).numpy(), getattr(torch, name)([1, 0, 1]).numpy())


def test_type_casts_to_a_legacy_type_or_its_name():
    x = dtorch.tensor([1.5, -2.0])
    assert x.type(dtorch.LongTensor).dtype == dtorch.int64
    assert x.type("torch.DoubleTensor").dtype == dtorch.float64
    assert x.type() == "dtorch.FloatTensor"
    with pytest.raises(ValueError, match="invalid type"):
        x.type("torch.NoSuchTensor")
    with pytest.raises(TypeError, match="sizes"):
        dtorch.FloatTensor(2, "a")
