"""Printed forms: ``repr`` of dtorch tensors equals PyTorch's with ``torch.`` spelled ``dtorch.``."""

import math

import pytest
import torch

import dtorch
from helpers import check_repr

CASES = {
    "whole floats": lambda lib: lib.tensor([1.0, 2.0, -3.0]),
    "fixed": lambda lib: lib.tensor([1.5, -2.25, 3.125]),
    "fixed rounding": lambda lib: lib.tensor([0.1, 0.123456, 100.5]),
    "scientific small": lambda lib: lib.tensor([1e-5, 1.0]),
    "scientific large": lambda lib: lib.tensor([1e9, 1.5]),
    "scientific ratio": lambda lib: lib.tensor([0.001, 10.5]),
    "whole large ratio": lambda lib: lib.tensor([1.0, 100000.0]),
    "zeros": lambda lib: lib.zeros(3),
    "negative zero": lambda lib: lib.tensor([-0.0, 1.0]),
    "scalar float": lambda lib: lib.tensor(3.5),
    "scalar whole": lambda lib: lib.tensor(2.0),
    "scalar int": lambda lib: lib.tensor(7),
    "scalar bool": lambda lib: lib.tensor(True),
    "ints": lambda lib: lib.tensor([1, -20, 300]),
    "bools": lambda lib: lib.tensor([True, False]),
    "2-D floats": lambda lib: lib.tensor([[1.0, 2.5], [-3.0, 4.0]]),
    "2-D ints": lambda lib: lib.arange(6).reshape(2, 3),
    "3-D": lambda lib: lib.arange(12.0).reshape(2, 2, 3),
    "empty": lambda lib: lib.tensor([]),
    "empty 2-D": lambda lib: lib.zeros(0, 3),
    "empty int32": lambda lib: lib.zeros(2, 0, dtype=lib.int32),
    "nan inf": lambda lib: lib.tensor([math.nan, math.inf, -math.inf, 1.5]),
    "nan whole": lambda lib: lib.tensor([math.nan, 1.0, 2.0]),
    "float64": lambda lib: lib.tensor([1.5, 2.0], dtype=lib.float64),
    "float16": lambda lib: lib.tensor([1.5, 2.0], dtype=lib.float16),
    "int32": lambda lib: lib.tensor([1, 2], dtype=lib.int32),
    "uint8": lambda lib: lib.tensor([1, 255], dtype=lib.uint8),
    "int8 2-D": lambda lib: lib.tensor([[1], [-2]], dtype=lib.int8),
    "requires grad": lambda lib: lib.tensor([1.0, 2.0], requires_grad=True),
    "requires grad float64": lambda lib: lib.tensor([1.0], dtype=lib.float64, requires_grad=True),
    "grad_fn add": lambda lib: lib.tensor([1.0, 2.0], requires_grad=True) + 1,
    "grad_fn mul": lambda lib: lib.tensor([1.0, 2.0], requires_grad=True) * 2,
    "grad_fn sum": lambda lib: lib.tensor([1.0, 2.0], requires_grad=True).sum(),
    "grad_fn mean": lambda lib: lib.tensor([1.0, 2.0], requires_grad=True).mean(),
    "grad_fn exp": lambda lib: lib.tensor([0.0], requires_grad=True).exp(),
    "grad_fn sub": lambda lib: lib.tensor([0.0], requires_grad=True) - 1,
    "grad_fn div": lambda lib: lib.tensor([1.0], requires_grad=True) / 2,
    "grad_fn neg": lambda lib: -lib.tensor([1.0], requires_grad=True),
    "grad_fn tanh": lambda lib: lib.tensor([1.0], requires_grad=True).tanh(),
    "grad_fn sigmoid": lambda lib: lib.tensor([1.0], requires_grad=True).sigmoid(),
    "grad_fn relu": lambda lib: lib.tensor([1.0], requires_grad=True).relu(),
    "grad_fn pow": lambda lib: lib.tensor([1.0], requires_grad=True) ** 2,
    "grad_fn clone": lambda lib: lib.tensor([1.0], requires_grad=True).clone(),
    "grad_fn matmul": lambda lib: lib.ones(2, 2, requires_grad=True) @ lib.ones(2, 2),
    "detached": lambda lib: (lib.tensor([1.0], requires_grad=True) * 2).detach(),
    "no_grad": lambda lib: _no_grad(lib),
    "wide row wraps": lambda lib: lib.arange(30.0) / 7,
    "long int row wraps": lambda lib: lib.arange(40) * 1000,
    "summarized": lambda lib: lib.arange(2000.0),
    "summarized 2-D": lambda lib: lib.arange(2000).reshape(40, 50),
    "mixed widths": lambda lib: lib.tensor([[1.0, -100.5], [0.5, 2.0]]),
    "precision": lambda lib: lib.tensor([1.23456789]),
    "empty int64 names its dtype": lambda lib: lib.tensor([], dtype=lib.int64),
    "empty bool 2-D": lambda lib: lib.zeros(0, 2, dtype=lib.bool),
    "inf whole": lambda lib: lib.tensor([math.inf, 1.0, -2.0]),
    "suffix wraps": lambda lib: lib.arange(12.0).reshape(3, 4).double() * 1e8,
    "two suffixes wrap": lambda lib: (lib.arange(12.0, dtype=lib.float16).reshape(3, 4) * 1000 + 0.5).requires_grad_()
    * 2,
    "wide summarized rows": lambda lib: lib.arange(4000.0).reshape(4, 1000) / 3,
    "tall summarized": lambda lib: lib.arange(2000).reshape(1000, 2),
    "4-D": lambda lib: lib.arange(16).reshape(2, 2, 2, 2),
    "transposed": lambda lib: lib.arange(6.0).reshape(2, 3).t(),
    "0-d requires grad": lambda lib: lib.tensor(1.5, requires_grad=True),
    "0-d grad_fn": lambda lib: lib.tensor(1.5, requires_grad=True) * 2,
    "0-d float16 requires grad": lambda lib: lib.tensor(1.0, dtype=lib.float16, requires_grad=True),
    "empty requires grad": lambda lib: lib.zeros(0, requires_grad=True),
    "empty float64 2-D": lambda lib: lib.zeros(0, 2, dtype=lib.float64),
    "float16 negative": lambda lib: lib.tensor([-1.5, 2.25], dtype=lib.float16),
    "bool 2-D": lambda lib: lib.tensor([[True, False], [False, True]]),
    "int 0-d negative": lambda lib: lib.tensor(-3),
    "uint8 0-d": lambda lib: lib.tensor(3, dtype=lib.uint8),
    "int8 extremes": lambda lib: lib.tensor([-128, 127], dtype=lib.int8),
    "tiny floats": lambda lib: lib.tensor([1e-10, 1e-12]),
    "large whole floats": lambda lib: lib.tensor([1e10, 2.0]),
    "negative zero 0-d": lambda lib: lib.tensor(-0.0),
    "nan 0-d": lambda lib: lib.tensor(math.nan),
    "inf only": lambda lib: lib.tensor([math.inf, -math.inf]),
    "mixed sign scientific": lambda lib: lib.tensor([-1e-5, 1e5]),
    "grad_fn sum of 2-D": lambda lib: lib.ones(2, 3, requires_grad=True).sum(),
    "grad_fn cat": lambda lib: lib.cat([lib.ones(2, requires_grad=True), lib.ones(1)]),
    "grad_fn where": lambda lib: lib.where(lib.tensor([True, False]), lib.ones(2, requires_grad=True), 0.0),
    "grad_fn exp float64": lambda lib: lib.ones(2, dtype=lib.float64, requires_grad=True).exp(),
    "grad_fn expand": lambda lib: lib.ones(1, 2, requires_grad=True).expand(2, 2),
    "grad_fn sqrt": lambda lib: lib.ones(2, requires_grad=True).sqrt(),
    "grad_fn sum dim": lambda lib: _graph(lib).sum(1),
    "grad_fn mean keepdim": lambda lib: _graph(lib).mean(0, keepdim=True),
    "grad_fn prod": lambda lib: _graph(lib).prod(),
    "grad_fn prod dim": lambda lib: _graph(lib).prod(1),
    "grad_fn max": lambda lib: _graph(lib).max(),
    "grad_fn max dim": lambda lib: _graph(lib).max(1).values,
    "grad_fn min dim": lambda lib: _graph(lib).min(0).values,
    "grad_fn amax": lambda lib: _graph(lib).amax(1),
    "grad_fn amin": lambda lib: _graph(lib).amin(0),
    "grad_fn norm": lambda lib: _graph(lib).norm(dim=1),
    "grad_fn logsumexp": lambda lib: _graph(lib).logsumexp(1),
    "grad_fn cumsum": lambda lib: _graph(lib).cumsum(1),
    "grad_fn cumprod": lambda lib: _graph(lib).cumprod(0),
    "grad_fn view": lambda lib: _graph(lib).view(-1),
    "grad_fn flatten": lambda lib: _graph(lib).flatten(),
    "grad_fn t": lambda lib: _graph(lib).t(),
    "grad_fn transpose": lambda lib: _graph(lib)[None].transpose(1, 2),
    "grad_fn permute": lambda lib: _graph(lib)[None].permute(1, 2, 0),
    "grad_fn contiguous": lambda lib: _graph(lib).t().contiguous(),
    "grad_fn select": lambda lib: _graph(lib)[:, 0],
    "grad_fn slice": lambda lib: _graph(lib)[1:],
    "grad_fn index": lambda lib: _graph(lib)[[0, 1]],
    "grad_fn unsqueeze by None": lambda lib: _graph(lib)[:, None],
    "grad_fn scatter value": lambda lib: _graph(lib).scatter(0, lib.tensor([[0]]), 1.0),
    "grad_fn scatter_add": lambda lib: _graph(lib).scatter_add(0, lib.tensor([[0]]), lib.ones(1, 1)),
    "grad_fn topk": lambda lib: _graph(lib).topk(1).values,
}


def _graph(lib):
    """A 2 x 3 non-leaf with a graph behind it."""
    return lib.arange(6.0).reshape(2, 3).requires_grad_() * 1


def _no_grad(lib):
    with lib.no_grad():
        return lib.tensor([1.0], requires_grad=True) * 2


@pytest.mark.parametrize("name", sorted(CASES))
def test_repr_matches_torch(name):
    check_repr(CASES[name])


def test_str_and_size_and_dtype_reprs():
    assert str(dtorch.tensor([1.0, 2.0])) == str(torch.tensor([1.0, 2.0]))
    assert repr(dtorch.zeros(2, 3).shape) == repr(torch.zeros(2, 3).shape).replace("torch.", "dtorch.")
    for name in ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8", "bool"):
        assert repr(getattr(dtorch, name)) == repr(getattr(torch, name)).replace("torch.", "dtorch.")
    assert repr(dtorch.device("cpu")) == repr(torch.device("cpu"))


def test_max_with_dim_prints_like_torch():
    check_repr(lambda lib: lib.tensor([[1, 5], [7, 2]]).max(dim=1))
    check_repr(lambda lib: lib.tensor([3.0, 1.0, 2.0]).sort())


@pytest.mark.parametrize("options", [dict(precision=2), dict(threshold=5), dict(edgeitems=1, threshold=5),
                                     dict(linewidth=40)], ids=str)
def test_set_printoptions_like_torch(options):
    try:
        torch.set_printoptions(**options)
        dtorch.set_printoptions(**options)
        check_repr(lambda lib: lib.arange(12.0).reshape(3, 4) / 3)
        check_repr(lambda lib: lib.arange(30) * 1000)
    finally:
        torch.set_printoptions(profile="default")
        dtorch.set_printoptions(precision=4, threshold=1000, edgeitems=3, linewidth=80)


@pytest.mark.parametrize("make", [
    lambda x: x.unsqueeze(0), lambda x: x.squeeze(), lambda x: x.squeeze(1), lambda x: x.squeeze((1,)),
    lambda x: x.view(6), lambda x: x.flatten(),
], ids=["unsqueeze", "squeeze", "squeeze dim", "squeeze dims", "view", "flatten"])
def test_reshape_family_grad_fn_names_match_torch(make):
    names = []
    for lib in (dtorch, torch):
        out = make(lib.ones(2, 1, 3, requires_grad=True) * 1)
        names.append(out.grad_fn.name() if lib is dtorch else type(out.grad_fn).__name__)
    assert names[0] == names[1]


# ---- set_printoptions: sci_mode and profiles, against PyTorch ------------------------------------------------------------

PRINT_CASES = [
    [1e-5, 1.0, 123456.0],
    [1e10, 2.0],
    [0.5, 3e9],
    [1.5, 2.0],
    [1.0, 2.0],
    [1.23456],
    [float("nan"), 1.5, float("inf")],
]


@pytest.mark.parametrize("options", [
    {"sci_mode": False}, {"sci_mode": True}, {"profile": "short"}, {"profile": "full"}, {"profile": "default"},
    {"profile": "short", "precision": 3}, {"precision": 6, "sci_mode": False}, {"profile": "nope"},
])
def test_set_printoptions_matches_torch(options):
    import torch

    try:
        torch.set_printoptions(**options)
        dtorch.set_printoptions(**options)
        for values in PRINT_CASES:
            assert repr(dtorch.tensor(values)) == repr(torch.tensor(values)), values
        long_values = torch.arange(2000.0) / 3
        assert repr(dtorch.arange(2000.0) / 3) == repr(long_values)
        assert repr(dtorch.arange(10).reshape(2, 5)) == repr(torch.arange(10).reshape(2, 5))
    finally:
        torch.set_printoptions(profile="default")
        dtorch.set_printoptions(profile="default")


def test_sci_mode_stays_until_reset_and_profile_resets_it():
    try:
        dtorch.set_printoptions(sci_mode=True)
        dtorch.set_printoptions(precision=2)  # sci_mode not given: back to automatic, as in PyTorch
        assert repr(dtorch.tensor([1.5, 2.0])) == "tensor([1.50, 2.00])"
        assert dtorch._tensor_str.get_printoptions()["sci_mode"] is None
    finally:
        dtorch.set_printoptions(profile="default")
