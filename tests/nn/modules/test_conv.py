"""Convolutions and transposed convolutions (1-3d, groups, dilation, padding modes) against PyTorch
with the same weights, and their argument errors."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import assert_close, check_module, copy_weights, module_case_id

CASES = [
    ("Conv1d", (3, 4, 3), {"stride": 2, "padding": 1}, [(2, 3, 9)]),
    ("Conv1d", (4, 4, 3), {"groups": 2, "bias": False, "padding": "same"}, [(2, 4, 8)]),
    ("Conv2d", (3, 4, 3), {}, [(2, 3, 7, 6)]),
    ("Conv2d", (3, 6, (3, 2)), {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}, [(2, 3, 8, 7)]),
    ("Conv2d", (4, 6, 3), {"groups": 2, "padding": "same"}, [(2, 4, 5, 5)]),
    ("Conv2d", (2, 3, 3), {"padding": 1, "padding_mode": "reflect"}, [(1, 2, 5, 6)]),
    ("Conv2d", (2, 3, 3), {"padding": 1, "padding_mode": "circular", "bias": False}, [(1, 2, 5, 6)]),
    ("Conv2d", (2, 3, 3), {"padding": "valid"}, [(2, 5, 6)]),
    ("ConvTranspose2d", (4, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}, [(2, 4, 4, 5)]),
    ("ConvTranspose2d", (4, 6, 2), {"stride": 2, "groups": 2, "bias": False}, [(1, 4, 3, 3)]),
    ("ConvTranspose1d", (4, 2, 3), {"stride": 2, "padding": 1, "output_padding": 1, "dilation": 2}, [(2, 4, 5)]),
    ("ConvTranspose1d", (4, 2, 3), {"groups": 2}, [(4, 6)]),
    ("Conv3d", (3, 4, 3), {"padding": 1}, [(2, 3, 4, 5, 5)]),
    ("Conv3d", (4, 6, (2, 3, 3)), {"stride": (1, 2, 1), "groups": 2, "bias": False, "dilation": (2, 1, 1)},
     [(1, 4, 5, 6, 5)]),
    ("Conv3d", (2, 3, 3), {"padding": "same", "padding_mode": "reflect"}, [(1, 2, 4, 4, 4)]),
    ("Conv3d", (2, 3, 2), {"padding": 1, "padding_mode": "circular"}, [(2, 3, 3, 4)]),
    ("ConvTranspose3d", (3, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1}, [(2, 3, 3, 3, 2)]),
    ("ConvTranspose3d", (4, 2, (2, 3, 2)), {"groups": 2, "bias": False, "dilation": (2, 1, 1)}, [(4, 2, 3, 3)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)


def test_conv_argument_errors_match_torch():
    for kwargs in ({"groups": 0}, {"groups": 2}, {"padding": "same", "stride": 2}, {"padding": "full"},
                   {"padding_mode": "mirror"}):
        with pytest.raises(ValueError) as expected:
            torch.nn.Conv2d(3, 4, 3, **kwargs)
        with pytest.raises(ValueError) as actual:
            nn.Conv2d(3, 4, 3, **kwargs)
        # PyTorch prints the valid strings as a set (unordered): compare the text before it
        assert str(actual.value).split("{")[0].split("[")[0] == str(expected.value).split("{")[0]
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


def test_conv_transpose_output_size():
    torch_up = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    dtorch_up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    copy_weights(torch_up, dtorch_up)
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 5)).astype(np.float32)
    for size in ([10, 10], [1, 2, 9, 10]):
        expected = torch_up(torch.from_numpy(x), output_size=size)
        assert_close(dtorch_up(dtorch.from_numpy(x), output_size=size), expected, 1e-5, 1e-4, str(size))
    with pytest.raises(ValueError, match="requested an output size of"):
        dtorch_up(dtorch.from_numpy(x), output_size=[20, 20])
