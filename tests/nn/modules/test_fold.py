"""Fold and Unfold against PyTorch."""

import pytest

from helpers import check_module, module_case_id

CASES = [
    ("Fold", ((4, 5), 2), {}, [(2, 12, 12)]),
    ("Unfold", ((2, 3),), {"padding": 1, "stride": (2, 1)}, [(2, 3, 4, 5)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)
