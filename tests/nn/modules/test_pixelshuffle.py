"""PixelShuffle, PixelUnshuffle and ChannelShuffle against PyTorch."""

import pytest

from helpers import check_module, module_case_id

CASES = [
    ("PixelShuffle", (2,), {}, [(2, 8, 3, 3)]),
    ("PixelUnshuffle", (3,), {}, [(1, 2, 6, 3)]),
    ("ChannelShuffle", (2,), {}, [(2, 4, 3, 3)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)
