"""Activation layers against PyTorch (RReLU, random in training, is compared in eval mode and checked
for its range in training)."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import assert_close, check_module, module_case_id

CASES = [
    ("ReLU", (), {}, [(3, 4)]),
    ("LeakyReLU", (0.2,), {}, [(3, 4)]),
    ("ELU", (), {"alpha": 0.5}, [(3, 4)]),
    ("GELU", (), {}, [(3, 4)]),
    ("GELU", (), {"approximate": "tanh"}, [(3, 4)]),
    ("SiLU", (), {}, [(3, 4)]),
    ("Sigmoid", (), {}, [(3, 4)]),
    ("Tanh", (), {}, [(3, 4)]),
    ("Softplus", (), {"beta": 2.0, "threshold": 1.0}, [(3, 4)]),
    ("Softmax", (), {"dim": 1}, [(3, 4, 2)]),
    ("LogSoftmax", (), {"dim": -1}, [(3, 4)]),
    ("Hardtanh", (-0.5, 0.7), {}, [(3, 4)]),
    ("ReLU6", (), {"inplace": False}, [(3, 4)]),
    ("Mish", (), {}, [(3, 4)]),
    ("SELU", (), {}, [(3, 4)]),
    ("CELU", (0.5,), {}, [(3, 4)]),
    ("Threshold", (0.1, 20.0), {}, [(3, 4)]),
    ("GLU", (), {"dim": 1}, [(3, 4, 2)]),
    ("Softmin", (), {"dim": 0}, [(3, 4)]),
    ("Hardsigmoid", (), {}, [(3, 4)]),
    ("Hardswish", (), {}, [(3, 4)]),
    ("LogSigmoid", (), {}, [(3, 4)]),
    ("Softsign", (), {}, [(3, 4)]),
    ("Tanhshrink", (), {}, [(3, 4)]),
    ("Hardshrink", (), {}, [(3, 4)]),
    ("Softshrink", (0.3,), {}, [(3, 4)]),
    ("PReLU", (), {}, [(3, 4)]),
    ("PReLU", (3, 0.1), {}, [(2, 3, 5)]),
    ("RReLU", (0.1, 0.3), {}, [(3, 4)]),
    ("Softmax2d", (), {}, [(2, 3, 4, 4)]),
    ("Softmax2d", (), {}, [(3, 4, 2)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    random = name == "RReLU"
    check_module(name, args, kwargs, inputs, modes=("eval",) if random else ("train", "eval"))


def test_softmax_implicit_dim_warns_like_torch():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        out = nn.Softmax()(dtorch.from_numpy(x))
    with pytest.warns(UserWarning):
        expected = torch.nn.Softmax()(torch.from_numpy(x))
    assert_close(out, expected, 1e-6, 1e-5, "implicit softmax")


def test_softmax2d_checks_the_rank_like_torch():
    for lib in (torch, dtorch):
        with pytest.raises(ValueError, match="3D or 4D"):
            lib.nn.Softmax2d()(lib.ones(2, 3))


def test_rrelu_train_mode_draws_slopes_in_range():
    dtorch.manual_seed(0)
    x = dtorch.randn(200, 10)
    slopes = (nn.RReLU(0.1, 0.3)(x) / x).numpy()[x.numpy() < 0]
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6 and slopes.std() > 0.01
