"""Dropout layers: eval mode against PyTorch, and the statistics of training mode."""

import numpy as np
import pytest

import dtorch
from dtorch import nn
from helpers import check_module, module_case_id

CASES = [
    ("Dropout", (0.3,), {}, [(3, 4)]),
    ("Dropout1d", (0.3,), {}, [(3, 4, 5)]),
    ("Dropout2d", (0.3,), {}, [(3, 4, 5, 5)]),
    ("Dropout3d", (0.3,), {}, [(2, 3, 2, 2, 2)]),
    ("AlphaDropout", (0.2,), {}, [(3, 4)]),
    ("FeatureAlphaDropout", (0.2,), {"inplace": False}, [(2, 3, 4)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    random = True
    check_module(name, args, kwargs, inputs, modes=("eval",) if random else ("train", "eval"))


def test_dropout_statistics_and_modes():
    dtorch.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = dtorch.ones(200, 100, requires_grad=True)
    y = drop(x)
    values = y.detach().numpy()
    kept = values != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(values[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.75, rtol=1e-6)
    drop.eval()
    assert drop(x) is x or bool((drop(x) == x).all())
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout2d(0.1)) == "Dropout2d(p=0.1, inplace=False)"


def test_alpha_dropout_train_mode_keeps_mean_and_std():
    dtorch.manual_seed(0)
    x = dtorch.randn(200, 10)
    out = nn.AlphaDropout(0.5)(x)
    assert abs(float(out.mean())) < 0.1 and abs(float(out.std()) - 1.0) < 0.1
