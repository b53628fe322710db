"""Normalisation layers (batch, layer, group, instance, local response, RMS) against PyTorch with the
same weights: outputs, gradients and running statistics; their input checks."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import assert_close, check_module, module_case_id

CASES = [
    ("BatchNorm1d", (4,), {}, [(8, 4)]),
    ("BatchNorm1d", (4,), {"momentum": None}, [(8, 4, 5)]),
    ("BatchNorm1d", (4,), {"affine": False}, [(8, 4)]),
    ("BatchNorm2d", (3,), {}, [(4, 3, 5, 5)]),
    ("BatchNorm2d", (3,), {"track_running_stats": False, "momentum": 0.3}, [(4, 3, 5, 5)]),
    ("BatchNorm2d", (3,), {"eps": 1e-3, "bias": False}, [(4, 3, 2, 2)]),
    ("LayerNorm", (5,), {}, [(3, 4, 5)]),
    ("LayerNorm", ((4, 5),), {"elementwise_affine": False}, [(3, 4, 5)]),
    ("LayerNorm", (5,), {"bias": False, "eps": 1e-3}, [(3, 5)]),
    ("GroupNorm", (2, 4), {}, [(3, 4, 5, 5)]),
    ("GroupNorm", (3, 6), {"affine": False}, [(3, 6, 7)]),
    ("BatchNorm3d", (3,), {}, [(4, 3, 2, 3, 3)]),
    ("BatchNorm3d", (3,), {"momentum": None, "affine": False}, [(4, 3, 2, 2, 2)]),
    ("InstanceNorm1d", (3,), {}, [(2, 3, 6)]),
    ("InstanceNorm1d", (3,), {"affine": True, "track_running_stats": True}, [(2, 3, 6)]),
    ("InstanceNorm1d", (3,), {"affine": True}, [(3, 6)]),
    ("InstanceNorm2d", (3,), {"affine": True, "track_running_stats": True, "momentum": 0.3}, [(2, 3, 4, 5)]),
    ("InstanceNorm2d", (3,), {"eps": 1e-3}, [(3, 4, 5)]),
    ("InstanceNorm3d", (2,), {"affine": True, "bias": False}, [(2, 2, 3, 3, 2)]),
    ("LocalResponseNorm", (3,), {}, [(2, 5, 4, 4)]),
    ("LocalResponseNorm", (2,), {"alpha": 0.1, "beta": 0.5, "k": 2.0}, [(2, 4, 6)]),
    ("RMSNorm", (4,), {}, [(3, 4)]),
    ("RMSNorm", ([3, 4],), {"eps": 1e-5, "elementwise_affine": False}, [(2, 3, 4)]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)


def test_batchnorm_running_stats_over_steps():
    for momentum in (0.1, None):
        torch_bn, dtorch_bn = check_module("BatchNorm1d", (3,), {"momentum": momentum}, [(5, 3)], modes=())
        rng = np.random.default_rng(0)
        for _ in range(4):
            batch = rng.standard_normal((5, 3)).astype(np.float32) * 2 + 1
            torch_bn(torch.from_numpy(batch))
            dtorch_bn(dtorch.from_numpy(batch))
        for key, value in torch_bn.state_dict().items():
            assert_close(dtorch_bn.state_dict()[key], value, 1e-5, 1e-5, key)
        assert dtorch_bn.num_batches_tracked.item() == 4
        torch_bn.eval()
        dtorch_bn.eval()
        batch = rng.standard_normal((5, 3)).astype(np.float32)
        assert_close(dtorch_bn(dtorch.from_numpy(batch)), torch_bn(torch.from_numpy(batch)), 1e-5, 1e-4, "eval")


def test_batchnorm_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        nn.BatchNorm2d(3)(dtorch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(dtorch.zeros(2, 3, 4, 4))


def test_batchnorm_loads_state_without_num_batches_tracked():
    bn = nn.BatchNorm1d(2)
    state = {k: v for k, v in nn.BatchNorm1d(2).state_dict().items() if k != "num_batches_tracked"}
    assert bn.load_state_dict(state).missing_keys == []


def test_instance_norm_checks_like_torch():
    for lib in (torch, dtorch):
        with pytest.raises(ValueError, match="expected 3D or 4D input"):
            lib.nn.InstanceNorm2d(3)(lib.ones(2, 3))
        with pytest.raises(ValueError, match="to match num_features"):
            lib.nn.InstanceNorm1d(4, affine=True)(lib.ones(2, 3, 5))
        with pytest.warns(UserWarning, match="does not match num_features"):
            lib.nn.InstanceNorm1d(4)(lib.randn(2, 3, 5))
