"""CosineSimilarity and PairwiseDistance against PyTorch."""

import pytest

from helpers import check_module, module_case_id

CASES = [
    ("CosineSimilarity", (), {}, [(4, 5), (4, 5)]),
    ("CosineSimilarity", (), {"dim": -1, "eps": 1e-6}, [(2, 3, 5), (2, 3, 5)]),
    ("PairwiseDistance", (), {}, [(4, 5), (4, 5)]),
    ("PairwiseDistance", (1.0, 1e-3, True), {}, [(4, 5), (4, 5)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)
