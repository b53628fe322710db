"""Loss modules against PyTorch: values and gradients over reductions, weights and targets; legacy
arguments and weight buffers. Targets without gradients are ``Const``."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import Const, check_module, module_case_id

_rng = np.random.default_rng(1234)
_labels = _rng.integers(0, 5, size=(6,))
_labels_ignored = _labels.copy()
_labels_ignored[2] = -100
_probabilities = Const(_rng.dirichlet(np.ones(5), size=6).astype(np.float32))
_binary = Const(_rng.integers(0, 2, size=(6, 3)).astype(np.float32))
_unit = _rng.uniform(0.05, 0.95, size=(6, 3)).astype(np.float32)
_class_weight = _rng.uniform(0.5, 2.0, size=(5,)).astype(np.float32)
_log_target = Const(np.log(_rng.dirichlet(np.ones(5), size=6)).astype(np.float32))

_rng4 = np.random.default_rng(99)
_signs = Const(np.where(_rng4.random(6) < 0.5, -1.0, 1.0).astype(np.float32))
_labels4 = _rng4.integers(0, 4, size=(6,))
_multilabels = np.array([[3, 0, -1, 1], [1, -1, 0, 0], [0, 1, 2, 3], [-1, 2, 2, 2], [2, 2, -1, 0], [3, -1, 1, 1]])
_counts = _rng4.uniform(0.1, 3.0, size=(6, 4)).astype(np.float32)
_targets01 = Const(_rng4.integers(0, 2, size=(6, 4)).astype(np.float32))
_positive = _rng4.uniform(0.5, 2.0, size=(6, 4)).astype(np.float32)

CASES = [
    ("MSELoss", (), {}, [(6, 3), (6, 3)]),
    ("MSELoss", (), {"reduction": "none"}, [(6, 3), (6, 3)]),
    ("L1Loss", (), {"reduction": "sum"}, [(6, 3), (6, 3)]),
    ("SmoothL1Loss", (), {"beta": 0.5}, [(6, 3), (6, 3)]),
    ("HuberLoss", (), {"delta": 0.5}, [(6, 3), (6, 3)]),
    ("CrossEntropyLoss", (), {}, [(6, 5), _labels]),
    ("CrossEntropyLoss", (), {"weight": _class_weight, "label_smoothing": 0.1}, [(6, 5), _labels]),
    ("CrossEntropyLoss", (), {"ignore_index": -100, "reduction": "sum"}, [(6, 5), _labels_ignored]),
    ("CrossEntropyLoss", (), {}, [(6, 5), _probabilities]),
    ("CrossEntropyLoss", (), {"reduction": "none"}, [(2, 5, 3), _rng.integers(0, 5, size=(2, 3))]),
    ("NLLLoss", (), {"weight": _class_weight}, [(6, 5), _labels]),
    ("NLLLoss", (), {"reduction": "none", "ignore_index": 1}, [(6, 5), _labels]),
    ("CrossEntropyLoss", (), {"label_smoothing": 0.2, "reduction": "sum"}, [(6, 5), _probabilities]),
    ("BCELoss", (), {"weight": np.array([0.5, 1.0, 2.0], dtype=np.float32), "reduction": "none"}, [_unit, _binary]),
    ("HuberLoss", (), {"reduction": "none", "delta": 2.0}, [(6, 3), (6, 3)]),
    ("SmoothL1Loss", (), {"reduction": "sum", "beta": 0.0}, [(6, 3), (6, 3)]),
    ("BCELoss", (), {}, [_unit, _binary]),
    ("BCEWithLogitsLoss", (), {"pos_weight": np.array([1.0, 2.0, 0.5], dtype=np.float32)}, [(6, 3), _binary]),
    ("KLDivLoss", (), {"reduction": "batchmean"}, [(6, 5), _probabilities]),
    ("KLDivLoss", (), {"reduction": "sum", "log_target": True}, [(6, 5), _log_target]),
    ("PoissonNLLLoss", (), {}, [(6, 4), Const(_counts)]),
    ("PoissonNLLLoss", (False, True), {"reduction": "sum"}, [_positive, Const(_counts * 2)]),
    ("GaussianNLLLoss", (), {}, [(6, 4), (6, 4), _positive]),
    ("GaussianNLLLoss", (), {"full": True, "reduction": "none"}, [(6, 4), (6, 4), _positive]),
    ("MarginRankingLoss", (), {"margin": 0.3}, [(6,), (6,), _signs]),
    ("HingeEmbeddingLoss", (), {"margin": 0.5, "reduction": "sum"}, [(6,), _signs]),
    ("CosineEmbeddingLoss", (), {"margin": 0.2}, [(6, 4), (6, 4), _signs]),
    ("SoftMarginLoss", (), {}, [(6,), _signs]),
    ("MultiLabelSoftMarginLoss", (), {"weight": np.array([0.5, 1.0, 2.0, 1.5], np.float32)}, [(6, 4), _targets01]),
    ("MultiMarginLoss", (), {}, [(6, 4), _labels4]),
    ("MultiMarginLoss", (2, 0.5), {"weight": np.array([0.5, 1.0, 2.0, 1.5], np.float32), "reduction": "none"},
     [(6, 4), _labels4]),
    ("MultiLabelMarginLoss", (), {}, [(6, 4), _multilabels]),
    ("TripletMarginLoss", (), {"margin": 0.5, "swap": True}, [(6, 4), (6, 4), (6, 4)]),
    ("TripletMarginLoss", (), {"p": 1.0, "reduction": "sum"}, [(6, 4), (6, 4), (6, 4)]),
    ("TripletMarginWithDistanceLoss", (), {}, [(6, 4), (6, 4), (6, 4)]),
    (lambda nn_: nn_.TripletMarginWithDistanceLoss(distance_function=nn_.CosineSimilarity(), margin=2.0, swap=True),
     (), {}, [(6, 4), (6, 4), (6, 4)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)


def test_loss_legacy_reduction_arguments():
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        loss = nn.MSELoss(size_average=False)
    assert loss.reduction == "sum"
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"


def test_loss_weight_buffers_in_state_dict():
    weight = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert list(nn.CrossEntropyLoss(weight=dtorch.from_numpy(weight)).state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert list(nn.BCEWithLogitsLoss(pos_weight=dtorch.from_numpy(weight)).state_dict()) == \
        list(torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(weight)).state_dict())


def test_multi_margin_loss_checks_p_like_torch():
    for lib in (torch, dtorch):
        with pytest.raises(ValueError, match="only p == 1 and p == 2"):
            lib.nn.MultiMarginLoss(p=3)
