"""Tensor basics: metadata, conversions, devices, hooks' preconditions, numpy sharing."""

import pickle
import sys

import numpy as np
import pytest
import torch

import dtorch


def test_metadata_matches_torch():
    x = dtorch.zeros(2, 3, 4)
    t = torch.zeros(2, 3, 4)
    assert tuple(x.shape) == tuple(t.shape) and x.size(1) == t.size(1) and x.size(-1) == 4
    assert x.dim() == 3 and x.numel() == 24 and x.element_size() == 4
    assert x.stride() == t.stride()
    assert x.transpose(0, 2).stride() == t.transpose(0, 2).stride()
    assert not x.transpose(0, 2).is_contiguous()
    assert repr(x.shape) == "dtorch.Size([2, 3, 4])"
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.size(3)


def test_numpy_shares_memory_and_refuses_requires_grad():
    x = dtorch.zeros(3)
    x.numpy()[0] = 5
    assert x[0].item() == 5
    y = dtorch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Use tensor.detach\\(\\).numpy\\(\\)"):
        y.numpy()
    y.detach().numpy()[1] = 2
    assert y[1].item() == 2


def test_item_tolist_and_python_conversions():
    x = dtorch.tensor([[1, 2], [3, 4]])
    assert x.tolist() == [[1, 2], [3, 4]]
    assert dtorch.tensor(2.5).item() == 2.5 and float(dtorch.tensor([2.5])) == 2.5 and int(dtorch.tensor(7)) == 7
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        x.item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    assert [t.tolist() for t in x] == [[1, 2], [3, 4]]
    assert np.asarray(x).shape == (2, 2)
    assert len(x) == 2


def test_to_and_dtype_conversions():
    x = dtorch.tensor([1.7, -2.2], requires_grad=True)
    assert x.double().dtype == dtorch.float64 and x.double().requires_grad
    long = x.long()
    assert long.dtype == dtorch.int64 and not long.requires_grad and long.tolist() == [1, -2]
    assert x.to(dtorch.float32) is x
    assert x.to("cpu") is x and x.cpu() is x
    assert x.to(dtorch.zeros(1, dtype=dtorch.float16)).dtype == dtorch.float16
    x.double().sum().backward()
    assert x.grad.dtype == dtorch.float32


def test_cuda_unavailable_is_a_clear_error():
    if dtorch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert dtorch.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="cuda"):
        dtorch.ones(2).cuda()


def test_device_objects():
    assert dtorch.device("cuda:1") == dtorch.device("cuda", 1)
    assert str(dtorch.device("cuda", 0)) == "cuda:0"
    assert dtorch.ones(1).device == dtorch.device("cpu") == "cpu"
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        dtorch.device("tpu")


def test_detach_shares_memory_and_cuts_graph():
    x = dtorch.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="floating point"):
        dtorch.tensor([1, 2], requires_grad=True)
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf variables"):
        (x * 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        dtorch.ones(2).register_hook(lambda g: g)


def test_pickle_round_trip():
    x = dtorch.tensor([[1.0, 2.0]], requires_grad=True)
    y = pickle.loads(pickle.dumps(x))
    assert y.tolist() == x.tolist() and y.requires_grad


def test_mixing_devices_names_both(monkeypatch):
    # A CuPy-free stand-in for a GPU array: any array type other than numpy's counts as another device.
    class FakeDeviceArray(np.ndarray):
        pass

    a = dtorch.ones(2)
    b = dtorch.Tensor._from_array(np.ones(2).view(FakeDeviceArray), None)
    monkeypatch.setattr(dtorch._backend, "device_of", lambda arr: dtorch.device("cuda", 0)
                        if isinstance(arr, FakeDeviceArray) else dtorch.device("cpu"))
    monkeypatch.setattr("dtorch.autograd.function.device_of", dtorch._backend.device_of)
    with pytest.raises(RuntimeError, match="same device, but found at least two devices, cpu and cuda:0"):
        a + b


@pytest.mark.parametrize("name, make", [
    ("add", lambda a, b: a + b),
    ("matmul", lambda a, b: a @ b),
    ("cat", lambda a, b: dtorch.cat([a, b])),
    ("stack", lambda a, b: dtorch.stack([a, b])),
    ("where", lambda a, b: dtorch.where(a > 0, a, b)),
    ("maximum", lambda a, b: dtorch.maximum(a, b)),
    ("setitem", lambda a, b: a.__setitem__(slice(0, 1), b[0:1])),
    ("mul, other device first", lambda a, b: dtorch.mul(b, a)),
    ("einsum", lambda a, b: dtorch.einsum("i,i->", a, b)),
])
def test_every_kind_of_op_refuses_mixed_devices(monkeypatch, name, make):
    class FakeDeviceArray(np.ndarray):
        pass

    a = dtorch.ones(2)
    b = dtorch.Tensor._from_array(np.ones(2).astype(np.float32).view(FakeDeviceArray), None)
    monkeypatch.setattr(dtorch._backend, "device_of", lambda arr: dtorch.device("cuda", 0)
                        if isinstance(arr, FakeDeviceArray) else dtorch.device("cpu"))
    monkeypatch.setattr("dtorch.autograd.function.device_of", dtorch._backend.device_of)
    monkeypatch.setattr(sys.modules["dtorch.tensor"], "device_of", dtorch._backend.device_of)
    with pytest.raises(RuntimeError, match="same device, but found at least two devices, (cpu and cuda:0|cuda:0 "
                                           "and cpu)"):
        make(a, b)


def test_numpy_shares_memory_for_every_layout_and_dtype():
    for lib in (torch, dtorch):
        x = lib.arange(6.0).reshape(2, 3).t()
        array = x.numpy()
        array[0, 1] = 100
        assert x.tolist() == [[0.0, 100.0], [1.0, 4.0], [2.0, 5.0]] and array.strides == (4, 12)
        scalar = lib.tensor(2.0)
        scalar.numpy()[()] = 5
        assert scalar.item() == 5 and scalar.numpy().shape == ()
        assert lib.zeros(0, 3).numpy().shape == (0, 3)
        for dtype, expected in (("bool", np.bool_), ("float16", np.float16), ("uint8", np.uint8), ("int8", np.int8)):
            assert lib.zeros(2, dtype=getattr(lib, dtype)).numpy().dtype == expected
        grad_output = lib.ones(2, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match=r"Use tensor.detach\(\).numpy\(\) instead"):
            grad_output.numpy()
        assert grad_output.numpy(force=True).tolist() == [2.0, 2.0]


# ---- Tensor.data: PyTorch's semantics (a Tensor sharing memory, without history) -------------------------------

def test_data_is_a_tensor_sharing_memory_without_history():
    w = dtorch.ones(3, requires_grad=True)
    y = (w * 2).sum()
    d = w.data
    assert type(d) is dtorch.Tensor and not d.requires_grad and d.grad_fn is None
    d.mul_(5)  # changes w's memory, unseen by autograd (no version error)
    np.testing.assert_array_equal(w.detach().numpy(), [5.0, 5.0, 5.0])
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 2.0])


def test_data_idioms_of_old_training_scripts_match_torch():
    for lib in (dtorch, torch):
        lib.manual_seed(0)
    dw = dtorch.nn.Linear(4, 3)
    tw = torch.nn.Linear(4, 3)
    with torch.no_grad():
        tw.weight.copy_(torch.from_numpy(dw.weight.detach().numpy()))
        tw.bias.copy_(torch.from_numpy(dw.bias.detach().numpy()))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for lib, module in ((dtorch, dw), (torch, tw)):
        out = module(lib.from_numpy(x))
        out.sum().backward()
        for p in module.parameters():
            p.data.add_(p.grad.data, alpha=-0.1)  # the classic hand-written SGD step
            p.grad.data.zero_()
            p.data.clamp_(-0.3, 0.3)
        values, index = lib.max(module(lib.from_numpy(x)).data, 1)
        module.result = (values.numpy(), index.numpy(), module.weight.data.view(-1).numpy())
    for ours, theirs in zip(dw.result, tw.result):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    assert type(dw.weight.data) is dtorch.Tensor  # a Parameter's .data is a plain Tensor, as in PyTorch


def test_data_assignment_swaps_storage_and_rejects_non_tensors():
    p = dtorch.nn.Parameter(dtorch.zeros(2, 3))
    p.data = dtorch.arange(4.0, dtype=dtorch.float64)  # shape and dtype may change, as in PyTorch
    assert p.shape == (4,) and p.dtype == dtorch.float64 and p.requires_grad
    with pytest.raises(TypeError, match="ndarray"):
        p.data = np.zeros(2)


def test_legacy_constructor_takes_sizes_or_data_like_torch():
    for args in ((torch.Size([2, 3]),), (2, 3), (4,), (torch.Size([]),)):
        ours = dtorch.Tensor(*(dtorch.Size(a) if isinstance(a, torch.Size) else a for a in args))
        theirs = torch.Tensor(*args)
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype == dtorch.float32, args
    for data in ((2, 3), [[1, 2], [3, 4]], [5]):  # tuples and lists are data, not sizes
        np.testing.assert_array_equal(dtorch.Tensor(data).numpy(), torch.Tensor(data).numpy())
    x = dtorch.tensor([1.0, 2.0])
    assert dtorch.Tensor(x).tolist() == [1.0, 2.0]


def test_storage_offset_and_memory_methods():
    x = dtorch.arange(12.0).reshape(3, 4)
    assert x[1:, 2:].storage_offset() == torch.arange(12.0).reshape(3, 4)[1:, 2:].storage_offset()
    assert x.pin_memory() is x and not x.is_pinned() and x.share_memory_() is x


def test_to_parses_positional_flags_as_pytorch_for_tensors_and_modules():
    t = dtorch.ones(2)
    assert t.to(dtorch.float64, False).dtype == dtorch.float64  # non_blocking, not a device
    assert t.to(dtorch.float32, False, True) is not t  # copy=True
    assert t.to(dtorch.float32) is t and t.to(t) is t
    assert torch.ones(2).to(torch.float32, False, True) is not None  # the same overloads exist in PyTorch
    linear = dtorch.nn.Linear(2, 2)
    assert linear.to(dtorch.float64, False).weight.dtype == dtorch.float64
    with pytest.raises(TypeError, match="invalid combination"):
        t.to(object())
