"""Factories against PyTorch: dtypes, shapes and values of tensor/as_tensor/from_numpy/zeros/ones/full/empty/
_like/arange/linspace/eye/rand*/randperm/normal, and reproducible random numbers (manual_seed, Generator, state)."""

import numpy as np
import pytest
import torch

import dtorch


def _same(ours, theirs, values=True):
    assert tuple(ours.shape) == tuple(theirs.shape), (tuple(ours.shape), tuple(theirs.shape))
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], (ours.dtype, theirs.dtype)
    assert ours.requires_grad == theirs.requires_grad
    if values:
        np.testing.assert_allclose(np.asarray(ours.detach()._array, dtype=np.float64),
                                   theirs.detach().double().numpy(), rtol=1e-6, atol=1e-7)


def _both(make, values=True):
    _same(make(dtorch), make(torch), values)


@pytest.mark.parametrize("data", [
    [1, 2, 3], [1.0, 2.5], [True, False], [[1, 2], [3, 4]], 3, 2.5, True, [], [[]], [1, 2.5], [True, 2],
    np.array([1, 2], dtype=np.int32), np.array([1.0], dtype=np.float64), np.float64(2.0), np.int32(4),
    np.array(3, dtype=np.uint8), [np.float32(1.5)], ((1, 2), (3, 4)),
], ids=repr)
def test_tensor_infers_dtype_like_torch(data):
    _both(lambda lib: lib.tensor(data))


def test_tensor_options():
    _both(lambda lib: lib.tensor([1, 2], dtype=lib.float16))
    _both(lambda lib: lib.tensor([1.7, -2.7], dtype=lib.int32))
    _both(lambda lib: lib.tensor([1.0, 2.0], requires_grad=True))
    _both(lambda lib: lib.tensor([lib.tensor(1.0), lib.tensor(2.0)]))
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="floating point"):
            lib.tensor([1, 2], requires_grad=True)


def test_tensor_copies_and_as_tensor_shares():
    for lib in (torch, dtorch):
        array = np.zeros(3, dtype=np.float32)
        copied = lib.tensor(array)
        shared = lib.as_tensor(array)
        converted = lib.as_tensor(array, dtype=lib.float64)
        array[0] = 7
        assert copied[0].item() == 0 and shared[0].item() == 7 and converted[0].item() == 0
        t = lib.ones(2)
        assert lib.as_tensor(t) is t
        assert lib.as_tensor([1, 2]).dtype == lib.int64


def test_from_numpy_shares_memory_and_keeps_dtype():
    for dtype in (np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_):
        array = np.zeros((2, 3), dtype=dtype)
        _same(dtorch.from_numpy(array), torch.from_numpy(array))
    array = np.zeros(3)
    t = dtorch.from_numpy(array)
    t[1] = 4
    t.add_(1)
    assert array.tolist() == [1.0, 5.0, 1.0]
    array[2] = -1
    assert t.tolist() == [1.0, 5.0, -1.0]
    with pytest.raises(TypeError):
        dtorch.from_numpy([1, 2])


@pytest.mark.parametrize("name", ["zeros", "ones", "empty"])
def test_filled_factories(name):
    values = name != "empty"
    _both(lambda lib: getattr(lib, name)(2, 3), values)
    _both(lambda lib: getattr(lib, name)((2, 3)), values)
    _both(lambda lib: getattr(lib, name)([4]), values)
    _both(lambda lib: getattr(lib, name)(()), values)
    _both(lambda lib: getattr(lib, name)(0, 2), values)
    _both(lambda lib: getattr(lib, name)(lib.Size([2, 1])), values)
    _both(lambda lib: getattr(lib, name)(3, dtype=lib.int32), values)
    _both(lambda lib: getattr(lib, name)(3, dtype=lib.bool), values)
    _both(lambda lib: getattr(lib, name)(3, requires_grad=True), values)
    _both(lambda lib: getattr(lib, name + "_like")(lib.ones(2, 3, dtype=lib.int8)), values)
    _both(lambda lib: getattr(lib, name + "_like")(lib.ones(2, 3), dtype=lib.float64), values)
    _both(lambda lib: getattr(lib, name + "_like")(lib.ones(2), requires_grad=True), values)


def test_full_and_full_like():
    _both(lambda lib: lib.full((2, 3), 1.5))
    _both(lambda lib: lib.full((2,), 7))
    _both(lambda lib: lib.full((2,), True))
    _both(lambda lib: lib.full([2, 2], 3, dtype=lib.float16))
    _both(lambda lib: lib.full((), -1.0))
    _both(lambda lib: lib.full_like(lib.zeros(2, dtype=lib.int32), 5))
    _both(lambda lib: lib.full_like(lib.zeros(2), 2.5, dtype=lib.float64))
    _both(lambda lib: lib.zeros(2, 3).new_zeros(4))
    _both(lambda lib: lib.zeros(2, dtype=lib.int32).new_ones((2, 2)))
    _both(lambda lib: lib.zeros(2).new_full((3,), 4.0))
    _both(lambda lib: lib.zeros(2, dtype=lib.float64).new_tensor([1, 2]))


@pytest.mark.parametrize("args, kwargs", [
    ((5,), {}), ((2, 7), {}), ((1, 2, 0.25), {}), ((0, 1, 0.1), {}), ((5.0,), {}), ((10, 0, -3), {}),
    ((0,), {}), ((3,), {"dtype": "float32"}), ((0, 5, 2), {"dtype": "int32"}), ((-1.5, 1.5, 0.5), {}),
    ((1, 2.5), {}), ((0, 1, 1 / 3), {}),
], ids=str)
def test_arange(args, kwargs):
    def make(lib):
        options = {key: getattr(lib, value) for key, value in kwargs.items()}
        return lib.arange(*args, **options)
    _both(make)


def test_arange_errors():
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError):
            lib.arange(0, 5, 0)
        with pytest.raises(RuntimeError):
            lib.arange(5, 0, 1)


def test_linspace_logspace_eye():
    _both(lambda lib: lib.linspace(0, 1, 5))
    _both(lambda lib: lib.linspace(-2, 3, 1))
    _both(lambda lib: lib.linspace(0, 1, 0))
    _both(lambda lib: lib.linspace(0, 10, 4, dtype=lib.float64))
    _both(lambda lib: lib.linspace(0, 10, 6, dtype=lib.int64))
    _both(lambda lib: lib.logspace(0, 2, 3))
    _both(lambda lib: lib.eye(3))
    _both(lambda lib: lib.eye(2, 4))
    _both(lambda lib: lib.eye(3, dtype=lib.int64))
    _both(lambda lib: lib.eye(0))
    _both(lambda lib: lib.eye(3, requires_grad=True))


def test_random_factories_dtypes_shapes_and_ranges():
    dtorch.manual_seed(0)
    for make in (
        lambda lib: lib.rand(3, 4),
        lambda lib: lib.rand((2, 5), dtype=lib.float64),
        lambda lib: lib.randn(3),
        lambda lib: lib.randn(2, 2, dtype=lib.float16),
        lambda lib: lib.randn((), requires_grad=True),
        lambda lib: lib.randint(0, 10, (3, 4)),
        lambda lib: lib.randint(5, (2,)),
        lambda lib: lib.randint(-3, 3, (6,), dtype=lib.int32),
        lambda lib: lib.randperm(6),
        lambda lib: lib.randperm(4, dtype=lib.int32),
        lambda lib: lib.normal(0.0, 1.0, (2, 3)),
        lambda lib: lib.normal(lib.zeros(3), 2.0),
        lambda lib: lib.normal(lib.zeros(2, 1), lib.ones(3)),
        lambda lib: lib.rand_like(lib.zeros(2, dtype=lib.float64)),
        lambda lib: lib.randn_like(lib.zeros(2, 3)),
        lambda lib: lib.randint_like(lib.zeros(4), 3),
        lambda lib: lib.randint_like(lib.zeros(4), 1, 3),
    ):
        _both(make, values=False)
    x = dtorch.rand(1000)
    assert 0 <= x.min().item() and x.max().item() < 1
    r = dtorch.randint(-3, 3, (1000,))
    assert r.min().item() == -3 and r.max().item() == 2
    assert sorted(dtorch.randperm(10).tolist()) == list(range(10))
    n = dtorch.normal(5.0, 0.1, (2000,))
    assert abs(n.mean().item() - 5) < 0.02 and abs(n.std().item() - 0.1) < 0.02


def test_manual_seed_generator_and_rng_state_reproduce():
    dtorch.manual_seed(123)
    def draw():
        return (dtorch.rand(5), dtorch.randn(3), dtorch.randint(0, 100, (4,)), dtorch.randperm(7),
                dtorch.normal(0.0, 1.0, (2,)))

    first = draw()
    dtorch.manual_seed(123)
    second = draw()
    for a, b in zip(first, second):
        assert dtorch.equal(a, b)
    state = dtorch.get_rng_state()
    assert state.dtype == dtorch.uint8 and state.dim() == 1
    after = dtorch.rand(4)
    dtorch.rand(10)
    dtorch.set_rng_state(state)
    assert dtorch.equal(dtorch.rand(4), after)

    g = dtorch.Generator().manual_seed(7)
    a = dtorch.randn(3, generator=g)
    dtorch.manual_seed(7)  # the default generator does not affect g's stream
    g.manual_seed(7)
    assert dtorch.equal(dtorch.randn(3, generator=g), a)
    assert g.initial_seed() == 7
    g_state = g.get_state()
    b = dtorch.rand(3, generator=g)
    g.set_state(g_state)
    assert dtorch.equal(dtorch.rand(3, generator=g), b)
    assert not dtorch.equal(dtorch.rand(3, generator=dtorch.Generator().manual_seed(8)),
                            dtorch.rand(3, generator=dtorch.Generator().manual_seed(9)))
    for lib in (torch, dtorch):
        assert lib.manual_seed(3).initial_seed() == 3 and lib.initial_seed() == 3


def test_negative_size_is_an_error():
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError):
            lib.zeros(2, -1)
        with pytest.raises(RuntimeError, match="negative dimension"):
            lib.empty(2, -1)


def test_factories_follow_set_default_dtype():
    dtorch.set_default_dtype(dtorch.float64)
    torch.set_default_dtype(torch.float64)
    try:
        for make in (lambda lib: lib.tensor([1.5]), lambda lib: lib.zeros(2), lambda lib: lib.full((2,), 1.5),
                     lambda lib: lib.arange(0, 1, 0.5), lambda lib: lib.linspace(0, 1, 3), lambda lib: lib.eye(2),
                     lambda lib: lib.tensor([1, 2]), lambda lib: lib.tensor([], dtype=lib.float32)):
            _both(make)
        for make in (lambda lib: lib.rand(2), lambda lib: lib.randn(2), lambda lib: lib.empty(2)):
            _both(make, values=False)
        assert repr(dtorch.tensor([1.5])) == "tensor([1.5000])"
        assert repr(dtorch.tensor([1.5], dtype=dtorch.float32)) == "tensor([1.5000], dtype=dtorch.float32)"
    finally:
        dtorch.set_default_dtype(dtorch.float32)
        torch.set_default_dtype(torch.float32)


@pytest.mark.filterwarnings("error")  # torch converts these silently
def test_tensor_edge_values_and_dtypes():
    _both(lambda lib: lib.tensor([1e40]))  # beyond float32: inf
    _both(lambda lib: lib.tensor([1e5], dtype=lib.float16))
    _both(lambda lib: lib.tensor(float("nan")))
    _both(lambda lib: lib.tensor([[1, 2], [3, 4]], dtype=lib.uint8))
    _both(lambda lib: lib.tensor([1.5, -2.5], dtype=lib.int8))
    _both(lambda lib: lib.tensor([[lib.tensor(1.0)]]))
    _both(lambda lib: lib.tensor([], dtype=lib.bool))
    _both(lambda lib: lib.tensor([[], []]))
    _both(lambda lib: lib.tensor([True, 1.5]))
    _both(lambda lib: lib.tensor(np.float16(1.5)))
    _both(lambda lib: lib.as_tensor([1.0, 2.0], dtype=lib.float16))
    _both(lambda lib: lib.as_tensor(3.5))
    _both(lambda lib: lib.as_tensor(lib.arange(3), dtype=lib.float32))
    _both(lambda lib: lib.from_numpy(np.zeros((2, 3)).T))
    _both(lambda lib: lib.from_numpy(np.array(5, dtype=np.int16)))


def test_factory_edge_shapes_and_dtypes():
    _both(lambda lib: lib.zeros((2, 0)))
    _both(lambda lib: lib.ones([]))
    _both(lambda lib: lib.full((2,), 2.5, dtype=lib.int32))
    _both(lambda lib: lib.full((2, 2), False))
    _both(lambda lib: lib.zeros_like(lib.ones(2, 3).t()))
    _both(lambda lib: lib.ones_like(lib.tensor(True)))
    _both(lambda lib: lib.empty_like(lib.zeros(2, dtype=lib.int8)), values=False)
    _both(lambda lib: lib.empty(2, 3, dtype=lib.float16), values=False)
    _both(lambda lib: lib.arange(0, 1, 0.3, dtype=lib.float64))
    _both(lambda lib: lib.arange(-5, 5, 3))
    _both(lambda lib: lib.arange(lib.tensor(3)))
    _both(lambda lib: lib.arange(1, 4, dtype=lib.uint8))
    _both(lambda lib: lib.arange(0.5, 3))
    _both(lambda lib: lib.linspace(3, 1, 3))
    _both(lambda lib: lib.linspace(lib.tensor(0.0), lib.tensor(1.0), 3))
    _both(lambda lib: lib.linspace(0, 1, 5, dtype=lib.float16))
    _both(lambda lib: lib.eye(2, 0))
    _both(lambda lib: lib.eye(1, dtype=lib.bool))
    _both(lambda lib: lib.eye(2, 3, requires_grad=True))
