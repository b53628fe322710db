"""Pooling layers (max, average, adaptive, power-average, unpooling; 1-3d) against PyTorch."""

import numpy as np
import pytest
import torch

from dtorch import nn
from helpers import check_module, module_case_id

_rng = np.random.default_rng(99)
_x8 = torch.from_numpy(_rng.standard_normal((2, 3, 8)).astype(np.float32))
_pooled1, _indices1 = (t.numpy() for t in torch.nn.functional.max_pool1d(_x8, 2, return_indices=True))
_x66 = torch.from_numpy(_rng.standard_normal((2, 2, 6, 6)).astype(np.float32))
_pooled2, _indices2 = (t.numpy() for t in torch.nn.functional.max_pool2d(_x66, 2, return_indices=True))
_x446 = torch.from_numpy(_rng.standard_normal((2, 2, 4, 4, 6)).astype(np.float32))
_pooled3, _indices3 = (t.numpy() for t in torch.nn.functional.max_pool3d(_x446, 2, return_indices=True))

CASES = [
    ("MaxPool1d", (3,), {"stride": 2}, [(2, 3, 9)]),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1}, [(2, 3, 9)]),
    ("AdaptiveAvgPool1d", (4,), {}, [(2, 3, 9)]),
    ("MaxPool2d", (2,), {}, [(2, 3, 6, 6)]),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, [(2, 3, 7, 6)]),
    ("MaxPool2d", (2,), {"return_indices": True}, [(1, 2, 4, 4)]),
    ("MaxPool2d", (2,), {"stride": 1, "dilation": 2}, [(2, 2, 6, 5)]),
    ("AvgPool2d", (2,), {}, [(2, 3, 6, 6)]),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, [(2, 3, 7, 6)]),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, [(2, 3, 7, 8)]),
    ("AdaptiveAvgPool2d", (1,), {}, [(2, 3, 5, 5)]),
    ("MaxPool3d", (2,), {}, [(2, 3, 4, 4, 4)]),
    ("MaxPool3d", (2,), {"return_indices": True, "stride": 1}, [(1, 2, 3, 4, 3)]),
    ("MaxPool3d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, [(1, 2, 5, 6, 5)]),
    ("AvgPool3d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, [(1, 2, 5, 6, 5)]),
    ("AvgPool3d", (2,), {"divisor_override": 3}, [(1, 2, 4, 4, 4)]),
    ("AdaptiveAvgPool3d", ((2, None, 3),), {}, [(1, 2, 5, 6, 7)]),
    ("AdaptiveMaxPool3d", (2,), {}, [(1, 2, 5, 6, 7)]),
    ("LPPool3d", (2, 2), {}, [(1, 2, 4, 4, 4)]),
    ("MaxUnpool3d", (2,), {}, [_pooled3, _indices3]),
    ("AdaptiveMaxPool1d", (3,), {}, [(2, 3, 8)]),
    ("AdaptiveMaxPool1d", (3,), {"return_indices": True}, [(2, 3, 7)]),
    ("AdaptiveMaxPool2d", ((2, None),), {}, [(2, 3, 6, 5)]),
    ("AdaptiveMaxPool2d", ((3, 2),), {"return_indices": True}, [(1, 2, 7, 5)]),
    ("LPPool1d", (2, 3), {"stride": 2}, [(2, 3, 9)]),
    ("LPPool2d", (2.0, (2, 3)), {"stride": 1, "ceil_mode": True}, [(2, 2, 5, 6)]),
    ("MaxUnpool1d", (2,), {}, [_pooled1, _indices1]),
    ("MaxUnpool2d", (2,), {"stride": 2}, [_pooled2, _indices2]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)
