"""The layers added for parity with torch.nn (activations, pooling, normalisation, padding, shuffles, distances,
fold, upsampling and the less common losses) against PyTorch with the same weights: outputs, gradients, buffers
and repr, through ``check_module`` of test_layers."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from test_layers import Grad, check_module  # noqa: E402  (tests/nn is on sys.path under pytest)

_rng = np.random.default_rng(99)
_x8 = torch.from_numpy(_rng.standard_normal((2, 3, 8)).astype(np.float32))
_pooled1, _indices1 = (t.numpy() for t in torch.nn.functional.max_pool1d(_x8, 2, return_indices=True))
_x66 = torch.from_numpy(_rng.standard_normal((2, 2, 6, 6)).astype(np.float32))
_pooled2, _indices2 = (t.numpy() for t in torch.nn.functional.max_pool2d(_x66, 2, return_indices=True))
_x446 = torch.from_numpy(_rng.standard_normal((2, 2, 4, 4, 6)).astype(np.float32))
_pooled3, _indices3 = (t.numpy() for t in torch.nn.functional.max_pool3d(_x446, 2, return_indices=True))
_signs = np.where(_rng.random(6) < 0.5, -1.0, 1.0).astype(np.float32)
_labels = _rng.integers(0, 4, size=(6,))
_multilabels = np.array([[3, 0, -1, 1], [1, -1, 0, 0], [0, 1, 2, 3], [-1, 2, 2, 2], [2, 2, -1, 0], [3, -1, 1, 1]])
_counts = Grad(_rng.uniform(0.1, 3.0, size=(6, 4)).astype(np.float32))
_targets01 = _rng.integers(0, 2, size=(6, 4)).astype(np.float32)
_positive = Grad(_rng.uniform(0.5, 2.0, size=(6, 4)).astype(np.float32))

CASES = [
    ("EmbeddingBag", (7, 3), {}, [np.array([1, 2, 2, 0, 5, 6, 3]), np.array([0, 2, 2, 5])]),
    ("EmbeddingBag", (7, 3), {"mode": "max", "padding_idx": 0}, [np.array([[1, 2, 0], [0, 0, 6]])]),
    ("EmbeddingBag", (7, 3), {"mode": "sum", "max_norm": 1.0, "include_last_offset": True},
     [np.array([1, 2, 2, 0, 5, 6, 3]), np.array([0, 2, 2, 5, 7])]),
    ("Conv3d", (3, 4, 3), {"padding": 1}, [(2, 3, 4, 5, 5)]),
    ("Conv3d", (4, 6, (2, 3, 3)), {"stride": (1, 2, 1), "groups": 2, "bias": False, "dilation": (2, 1, 1)},
     [(1, 4, 5, 6, 5)]),
    ("Conv3d", (2, 3, 3), {"padding": "same", "padding_mode": "reflect"}, [(1, 2, 4, 4, 4)]),
    ("Conv3d", (2, 3, 2), {"padding": 1, "padding_mode": "circular"}, [(2, 3, 3, 4)]),
    ("MaxPool3d", (2,), {}, [(2, 3, 4, 4, 4)]),
    ("MaxPool3d", (2,), {"return_indices": True, "stride": 1}, [(1, 2, 3, 4, 3)]),
    ("MaxPool3d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, [(1, 2, 5, 6, 5)]),
    ("AvgPool3d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, [(1, 2, 5, 6, 5)]),
    ("AvgPool3d", (2,), {"divisor_override": 3}, [(1, 2, 4, 4, 4)]),
    ("AdaptiveAvgPool3d", ((2, None, 3),), {}, [(1, 2, 5, 6, 7)]),
    ("AdaptiveMaxPool3d", (2,), {}, [(1, 2, 5, 6, 7)]),
    ("LPPool3d", (2, 2), {}, [(1, 2, 4, 4, 4)]),
    ("ConvTranspose3d", (3, 4, 3), {"stride": 2, "padding": 1, "output_padding": 1}, [(2, 3, 3, 3, 2)]),
    ("ConvTranspose3d", (4, 2, (2, 3, 2)), {"groups": 2, "bias": False, "dilation": (2, 1, 1)}, [(4, 2, 3, 3)]),
    ("MaxUnpool3d", (2,), {}, [Grad(_pooled3), _indices3]),
    ("Hardshrink", (), {}, [(3, 4)]),
    ("Softshrink", (0.3,), {}, [(3, 4)]),
    ("PReLU", (), {}, [(3, 4)]),
    ("PReLU", (3, 0.1), {}, [(2, 3, 5)]),
    ("RReLU", (0.1, 0.3), {}, [(3, 4)]),
    ("Softmax2d", (), {}, [(2, 3, 4, 4)]),
    ("Softmax2d", (), {}, [(3, 4, 2)]),
    ("Dropout3d", (0.3,), {}, [(2, 3, 2, 2, 2)]),
    ("AlphaDropout", (0.2,), {}, [(3, 4)]),
    ("FeatureAlphaDropout", (0.2,), {"inplace": False}, [(2, 3, 4)]),
    ("AdaptiveMaxPool1d", (3,), {}, [(2, 3, 8)]),
    ("AdaptiveMaxPool1d", (3,), {"return_indices": True}, [(2, 3, 7)]),
    ("AdaptiveMaxPool2d", ((2, None),), {}, [(2, 3, 6, 5)]),
    ("AdaptiveMaxPool2d", ((3, 2),), {"return_indices": True}, [(1, 2, 7, 5)]),
    ("LPPool1d", (2, 3), {"stride": 2}, [(2, 3, 9)]),
    ("LPPool2d", (2.0, (2, 3)), {"stride": 1, "ceil_mode": True}, [(2, 2, 5, 6)]),
    ("MaxUnpool1d", (2,), {}, [Grad(_pooled1), _indices1]),
    ("MaxUnpool2d", (2,), {"stride": 2}, [Grad(_pooled2), _indices2]),
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
    ("PixelShuffle", (2,), {}, [(2, 8, 3, 3)]),
    ("PixelUnshuffle", (3,), {}, [(1, 2, 6, 3)]),
    ("ChannelShuffle", (2,), {}, [(2, 4, 3, 3)]),
    ("CosineSimilarity", (), {}, [(4, 5), (4, 5)]),
    ("CosineSimilarity", (), {"dim": -1, "eps": 1e-6}, [(2, 3, 5), (2, 3, 5)]),
    ("PairwiseDistance", (), {}, [(4, 5), (4, 5)]),
    ("PairwiseDistance", (1.0, 1e-3, True), {}, [(4, 5), (4, 5)]),
    ("Fold", ((4, 5), 2), {}, [(2, 12, 12)]),
    ("Unfold", ((2, 3),), {"padding": 1, "stride": (2, 1)}, [(2, 3, 4, 5)]),
    ("Upsample", (), {"scale_factor": 2}, [(1, 2, 3, 4)]),
    ("Upsample", (), {"size": (5, 7), "mode": "bilinear", "align_corners": True}, [(1, 2, 3, 4)]),
    ("Upsample", (), {"scale_factor": (1.5, 2.0), "mode": "bilinear"}, [(1, 2, 4, 3)]),
    ("UpsamplingNearest2d", (), {"scale_factor": 2}, [(1, 2, 3, 3)]),
    ("UpsamplingBilinear2d", (), {"size": 5}, [(1, 2, 3, 3)]),
    ("PoissonNLLLoss", (), {}, [(6, 4), _counts.array]),
    ("PoissonNLLLoss", (False, True), {"reduction": "sum"}, [_positive, _counts.array * 2]),
    ("GaussianNLLLoss", (), {}, [(6, 4), (6, 4), _positive]),
    ("GaussianNLLLoss", (), {"full": True, "reduction": "none"}, [(6, 4), (6, 4), _positive]),
    ("MarginRankingLoss", (), {"margin": 0.3}, [(6,), (6,), _signs]),
    ("HingeEmbeddingLoss", (), {"margin": 0.5, "reduction": "sum"}, [(6,), _signs]),
    ("CosineEmbeddingLoss", (), {"margin": 0.2}, [(6, 4), (6, 4), _signs]),
    ("SoftMarginLoss", (), {}, [(6,), _signs]),
    ("MultiLabelSoftMarginLoss", (), {"weight": np.array([0.5, 1.0, 2.0, 1.5], np.float32)}, [(6, 4), _targets01]),
    ("MultiMarginLoss", (), {}, [(6, 4), _labels]),
    ("MultiMarginLoss", (2, 0.5), {"weight": np.array([0.5, 1.0, 2.0, 1.5], np.float32), "reduction": "none"},
     [(6, 4), _labels]),
    ("MultiLabelMarginLoss", (), {}, [(6, 4), _multilabels]),
    ("TripletMarginLoss", (), {"margin": 0.5, "swap": True}, [(6, 4), (6, 4), (6, 4)]),
    ("TripletMarginLoss", (), {"p": 1.0, "reduction": "sum"}, [(6, 4), (6, 4), (6, 4)]),
    ("TripletMarginWithDistanceLoss", (), {}, [(6, 4), (6, 4), (6, 4)]),
    (lambda nn_: nn_.TripletMarginWithDistanceLoss(distance_function=nn_.CosineSimilarity(), margin=2.0, swap=True),
     (), {}, [(6, 4), (6, 4), (6, 4)]),
]


def _case_id(case):
    name, args, kwargs, _ = case
    name = name if isinstance(name, str) else "builder"
    return name + "-" + "-".join([str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()
                                                           if not isinstance(v, np.ndarray)])


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    random = isinstance(name, str) and ("Dropout" in name or name == "RReLU")
    check_module(name, args, kwargs, inputs, modes=("eval",) if random else ("train", "eval"))


def test_instance_norm_checks_like_torch():
    for lib in (torch, dtorch):
        with pytest.raises(ValueError, match="expected 3D or 4D input"):
            lib.nn.InstanceNorm2d(3)(lib.ones(2, 3))
        with pytest.raises(ValueError, match="to match num_features"):
            lib.nn.InstanceNorm1d(4, affine=True)(lib.ones(2, 3, 5))
        with pytest.warns(UserWarning, match="does not match num_features"):
            lib.nn.InstanceNorm1d(4)(lib.randn(2, 3, 5))
        with pytest.raises(ValueError, match="only p == 1 and p == 2"):
            lib.nn.MultiMarginLoss(p=3)
        with pytest.raises(ValueError, match="3D or 4D"):
            lib.nn.Softmax2d()(lib.ones(2, 3))


def test_rrelu_and_alpha_dropout_train_mode():
    x = dtorch.randn(200, 10)
    slopes = (nn.RReLU(0.1, 0.3)(x) / x).numpy()[x.numpy() < 0]
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6 and slopes.std() > 0.01
    out = nn.AlphaDropout(0.5)(x)
    assert abs(float(out.mean())) < 0.1 and abs(float(out.std()) - 1.0) < 0.1


def test_data_parallel_wraps_the_module_like_torch_without_gpus():
    torch_model = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    model = nn.DataParallel(nn.Linear(3, 2))
    assert repr(model) == repr(torch_model)
    assert list(model.state_dict()) == list(torch_model.state_dict())
    model.load_state_dict({k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in torch_model.state_dict().items()})
    x = _rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(model(dtorch.from_numpy(x)).detach().numpy(),
                               torch_model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert model.module is model._modules["module"]


# ---- lazy modules -------------------------------------------------------------------------------------------------

LAZY = [
    ("LazyLinear", (3,), {}, (4, 5)),
    ("LazyLinear", (2,), {"bias": False}, (2, 3, 6)),
    ("LazyConv1d", (4, 3), {"stride": 2}, (2, 3, 9)),
    ("LazyConv2d", (4, 3), {"padding": 1, "groups": 2}, (2, 6, 5, 5)),
    ("LazyConv3d", (2, 2), {}, (1, 3, 3, 4, 3)),
    ("LazyConvTranspose1d", (2, 3), {"stride": 2, "output_padding": 1}, (2, 4, 5)),
    ("LazyConvTranspose2d", (4, 3), {"stride": 2}, (2, 3, 3, 4)),
    ("LazyConvTranspose3d", (2, 2), {"bias": False}, (1, 4, 2, 3, 2)),
    ("LazyBatchNorm1d", (), {}, (6, 3)),
    ("LazyBatchNorm2d", (), {"affine": False}, (4, 3, 2, 2)),
    ("LazyBatchNorm3d", (), {"momentum": None}, (4, 2, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 5)),
    ("LazyInstanceNorm2d", (), {"affine": False}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {"bias": False}, (1, 2, 2, 3, 3)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", LAZY, ids=[c[0] + str(i) for i, c in enumerate(LAZY)])
def test_lazy_module_becomes_the_eager_one_like_torch(name, args, kwargs, shape):
    def build(lib_nn):
        lib = torch if lib_nn is torch.nn else dtorch
        module = getattr(lib_nn, name)(*args, **kwargs)
        before, params = repr(module), list(module.parameters())
        module(lib.zeros(*shape))
        # materialised in place: an optimizer built before the first call holds the same Parameter objects
        assert [id(p) for p in module.parameters()] == [id(p) for p in params]
        build.reprs.append(before)
        return module

    build.reprs = []
    check_module(build, inputs=[shape])
    assert build.reprs[0] == build.reprs[1]


def test_lazy_module_loads_a_state_dict_like_torch():
    source = torch.nn.Linear(5, 3)
    lazy, torch_lazy = nn.LazyLinear(3), torch.nn.LazyLinear(3)
    torch_lazy.load_state_dict(source.state_dict())
    lazy.load_state_dict({k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in source.state_dict().items()})
    assert not lazy.has_uninitialized_params() and type(lazy).__name__ == "LazyLinear"
    x = _rng.standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(lazy(dtorch.from_numpy(x)).detach().numpy(),
                               torch_lazy(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert repr(lazy) == repr(torch_lazy) == "Linear(in_features=5, out_features=3, bias=True)"
    assert isinstance(nn.LazyLinear(2).weight, nn.UninitializedParameter)


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
def test_lazy_module_survives_copy_and_pickle_before_its_first_call(copier):
    import copy
    import pickle

    lazy = nn.LazyLinear(3).double()
    clone = copy.deepcopy(lazy) if copier == "deepcopy" else pickle.loads(pickle.dumps(lazy))
    assert isinstance(clone.weight, nn.UninitializedParameter) and clone.weight.dtype == dtorch.float64
    assert tuple(clone(dtorch.ones(2, 4, dtype=dtorch.float64)).shape) == (2, 3)
    assert type(clone) is nn.Linear and not clone._forward_pre_hooks
    assert isinstance(lazy.weight, nn.UninitializedParameter)  # the original is untouched
