"""Upsample and its nearest/bilinear forms against PyTorch."""

import pytest

from helpers import check_module, module_case_id

CASES = [
    ("Upsample", (), {"scale_factor": 2}, [(1, 2, 3, 4)]),
    ("Upsample", (), {"size": (5, 7), "mode": "bilinear", "align_corners": True}, [(1, 2, 3, 4)]),
    ("Upsample", (), {"scale_factor": (1.5, 2.0), "mode": "bilinear"}, [(1, 2, 4, 3)]),
    ("UpsamplingNearest2d", (), {"scale_factor": 2}, [(1, 2, 3, 3)]),
    ("UpsamplingBilinear2d", (), {"size": 5}, [(1, 2, 3, 3)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)
