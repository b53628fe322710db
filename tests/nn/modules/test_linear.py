"""Linear, Bilinear and Identity against PyTorch with the same weights (``check_module``)."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import assert_close, check_module, copy_weights, module_case_id

CASES = [
    ("Linear", (5, 3), {}, [(4, 5)]),
    ("Linear", (5, 3), {"bias": False}, [(2, 4, 5)]),
    ("Linear", (5, 3), {}, [(5,)]),
    ("Bilinear", (3, 4, 2), {}, [(5, 3), (5, 4)]),
    ("Identity", (3,), {"unused": True}, [(2, 3)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)


def test_layers_in_float64():
    torch_fc, dtorch_fc = torch.nn.Linear(4, 3).double(), nn.Linear(4, 3).double()
    assert dtorch_fc.weight.dtype == dtorch.float64
    copy_weights(torch_fc, dtorch_fc)
    x = np.random.default_rng(0).standard_normal((2, 4))
    assert_close(dtorch_fc(dtorch.from_numpy(x)), torch_fc(torch.from_numpy(x)), 1e-12, 1e-12, "float64")


def test_layer_factory_kwargs():
    fc = nn.Linear(3, 2, dtype=dtorch.float64, device="cpu")
    assert fc.weight.dtype == dtorch.float64 and fc.bias.dtype == dtorch.float64
    bn = nn.BatchNorm1d(3, dtype=dtorch.float64)
    assert bn.running_mean.dtype == dtorch.float64 and bn.num_batches_tracked.dtype == dtorch.int64
