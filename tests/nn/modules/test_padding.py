"""Padding layers (constant, zero, reflection, replication, circular; 1-3d) against PyTorch."""

import pytest

from helpers import check_module, module_case_id

CASES = [
    ("ConstantPad1d", (2, 1.5), {}, [(2, 3, 4)]),
    ("ConstantPad2d", ((1, 2, 0, 3), -1.0), {}, [(2, 2, 3, 4)]),
    ("ConstantPad3d", (1, 0.5), {}, [(1, 2, 2, 3, 2)]),
    ("ZeroPad1d", ((1, 2),), {}, [(2, 3, 4)]),
    ("ZeroPad2d", (2,), {}, [(1, 2, 3, 3)]),
    ("ZeroPad3d", ((1, 0, 0, 1, 2, 0),), {}, [(1, 1, 2, 2, 2)]),
    ("ReflectionPad1d", (2,), {}, [(2, 3, 5)]),
    ("ReflectionPad2d", ((1, 1, 2, 0),), {}, [(1, 2, 4, 4)]),
    ("ReflectionPad3d", (1,), {}, [(1, 1, 3, 3, 3)]),
    ("ReplicationPad1d", ((2, 1),), {}, [(2, 3, 4)]),
    ("ReplicationPad2d", (1,), {}, [(1, 2, 3, 4)]),
    ("ReplicationPad3d", (1,), {}, [(1, 1, 2, 3, 2)]),
    ("CircularPad1d", (1,), {}, [(2, 3, 4)]),
    ("CircularPad2d", ((1, 2, 2, 1),), {}, [(1, 2, 3, 4)]),
    ("CircularPad3d", (1,), {}, [(1, 1, 2, 3, 2)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)
