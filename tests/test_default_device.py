"""Default device and legacy default tensor type, as PyTorch's: ``set_default_device``/``get_default_device``,
``with dtorch.device(...)``, ``set_default_tensor_type``."""

import warnings

import numpy as np
import pytest
import torch

import dtorch


@pytest.fixture(autouse=True)
def _restore_defaults():
    yield
    dtorch.set_default_device(None)
    dtorch.set_default_dtype(dtorch.float32)


def test_default_device_round_trips_as_in_pytorch():
    assert str(dtorch.get_default_device()) == str(torch.get_default_device()) == "cpu"
    dtorch.set_default_device("cpu")
    assert dtorch.get_default_device() == dtorch.device("cpu")
    assert dtorch.zeros(2).device == dtorch.device("cpu")
    dtorch.set_default_device(None)
    assert dtorch.get_default_device() == dtorch.device("cpu")


def test_device_is_a_context_manager_that_restores_the_default():
    with dtorch.device("cpu") as chosen:
        assert chosen == dtorch.device("cpu")
        assert dtorch.get_default_device() == dtorch.device("cpu")
        assert dtorch.randn(2).device.type == "cpu"
    assert dtorch.get_default_device() == dtorch.device("cpu")


@pytest.mark.skipif(dtorch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_default_without_a_gpu_is_a_clear_error_and_nests():
    with dtorch.device("cpu"):
        with dtorch.device("cuda"):
            assert dtorch.get_default_device() == dtorch.device("cuda", 0)
            for factory in (lambda: dtorch.zeros(2), lambda: dtorch.tensor([1.0]), lambda: dtorch.randn(2)):
                with pytest.raises(RuntimeError, match="CuPy"):
                    factory()
            like = dtorch.from_numpy(np.ones(1))  # from_numpy is always on the CPU, as in PyTorch
            assert dtorch.zeros_like(like).device.type == "cpu"  # *_like follows its input
        assert dtorch.get_default_device() == dtorch.device("cpu")
        assert dtorch.zeros(1).device.type == "cpu"


def test_set_default_device_rejects_what_pytorch_rejects():
    with pytest.raises(RuntimeError, match="device type at start of device string: cpux"):
        dtorch.set_default_device("cpux")


def test_set_default_tensor_type_matches_pytorch():
    for library in (torch, dtorch):
        with pytest.warns(UserWarning, match="set_default_tensor_type\\(\\) is deprecated"):
            library.set_default_tensor_type(library.DoubleTensor)
        assert str(library.zeros(1).dtype).endswith("float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            library.set_default_tensor_type("torch.FloatTensor")
            assert str(library.get_default_dtype()).endswith("float32")
            with pytest.raises(TypeError, match="only floating-point types are supported as the default type"):
                library.set_default_tensor_type(library.LongTensor)
            with pytest.raises(TypeError, match="invalid type object"):
                library.set_default_tensor_type(3)
            with pytest.raises(AttributeError, match="has no attribute 'Foo'"):
                library.set_default_tensor_type("torch.Foo")
