"""Lazy modules: they become the eager module PyTorch's become on their first call (same weights, outputs and
gradients through ``check_module``), load state_dicts, and survive copy and pickle before the first call."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import check_module

_rng = np.random.default_rng(99)

LAZY = [
    ("LazyLinear", (3,), {}, (4, 5)),
    ("LazyLinear", (2,), {"bias": False}, (2, 3, 6)),
    ("LazyConv1d", (4, 3), {"stride": 2}, (2, 3, 9)),
    ("LazyConv2d", (4, 3), {"padding": 1, "groups": 2}, (2, 6, 5, 5)),
    ("LazyConv3d", (2, 2), {}, (1, 3, 3, 4, 3)),
    ("LazyConvTranspose1d", (2, 3), {"stride": 2, "output_padding": 1}, (2, 4, 5)),
    ("LazyConvTranspose2d", (4, 3), {"stride": 2}, (2, 3, 3, 4)),
    ("LazyConvTranspose3d", (2, 2), {"bias": False}, (1, 4, 2, 3, 2)),
    ("LazyBatchNorm1d", (), {}, (6, 3)),
    ("LazyBatchNorm2d", (), {"affine": False}, (4, 3, 2, 2)),
    ("LazyBatchNorm3d", (), {"momentum": None}, (4, 2, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 5)),
    ("LazyInstanceNorm2d", (), {"affine": False}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {"bias": False}, (1, 2, 2, 3, 3)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", LAZY, ids=[c[0] + str(i) for i, c in enumerate(LAZY)])
def test_lazy_module_becomes_the_eager_one_like_torch(name, args, kwargs, shape):
    def build(lib_nn):
        lib = torch if lib_nn is torch.nn else dtorch
        module = getattr(lib_nn, name)(*args, **kwargs)
        before, params = repr(module), list(module.parameters())
        module(lib.zeros(*shape))
        # materialised in place: an optimizer built before the first call holds the same Parameter objects
        assert [id(p) for p in module.parameters()] == [id(p) for p in params]
        build.reprs.append(before)
        return module

    build.reprs = []
    check_module(build, inputs=[shape])
    assert build.reprs[0] == build.reprs[1]


def test_lazy_module_loads_a_state_dict_like_torch():
    source = torch.nn.Linear(5, 3)
    lazy, torch_lazy = nn.LazyLinear(3), torch.nn.LazyLinear(3)
    torch_lazy.load_state_dict(source.state_dict())
    lazy.load_state_dict({k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in source.state_dict().items()})
    assert not lazy.has_uninitialized_params() and type(lazy).__name__ == "LazyLinear"
    x = _rng.standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(lazy(dtorch.from_numpy(x)).detach().numpy(),
                               torch_lazy(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert repr(lazy) == repr(torch_lazy) == "Linear(in_features=5, out_features=3, bias=True)"
    assert isinstance(nn.LazyLinear(2).weight, nn.UninitializedParameter)


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
def test_lazy_module_survives_copy_and_pickle_before_its_first_call(copier):
    import copy
    import pickle

    lazy = nn.LazyLinear(3).double()
    clone = copy.deepcopy(lazy) if copier == "deepcopy" else pickle.loads(pickle.dumps(lazy))
    assert isinstance(clone.weight, nn.UninitializedParameter) and clone.weight.dtype == dtorch.float64
    assert tuple(clone(dtorch.ones(2, 4, dtype=dtorch.float64)).shape) == (2, 3)
    assert type(clone) is nn.Linear and not clone._forward_pre_hooks
    assert isinstance(lazy.weight, nn.UninitializedParameter)  # the original is untouched
