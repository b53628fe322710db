"""Flatten and Unflatten against PyTorch."""

import pytest

from helpers import check_module, module_case_id

CASES = [
    ("Flatten", (), {}, [(2, 3, 4, 5)]),
    ("Flatten", (0, 2), {}, [(2, 3, 4, 5)]),
    ("Unflatten", (1, (2, 3)), {}, [(4, 6, 5)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)
