"""The less common ops of dtorch.nn.functional against torch.nn.functional (forward and gradients), one line per case.

Uses ``check`` from test_functional: each case is ``f(F, *tensors)`` run with both libraries on the same arrays.
"""

import warnings

import numpy as np
import pytest
import torch

import dtorch
import dtorch.nn.functional as DF
from test_functional import Const, check, ints, r  # noqa: E402  (tests/nn is on sys.path under pytest)


def _pool_indices(shape, kernel, seed):
    """A max-pool output and its indices (from torch), for max_unpool cases."""
    x = torch.from_numpy(r(*shape, seed=seed).astype(np.float32))
    pool = torch.nn.functional.max_pool1d if len(shape) == 3 else torch.nn.functional.max_pool2d
    out, idx = pool(x, kernel, return_indices=True)
    return out.numpy(), idx.numpy()


_U1, _I1 = _pool_indices((2, 3, 8), 2, 1)
_U2, _I2 = _pool_indices((2, 2, 6, 4), 2, 2)
_U3, _I3 = _pool_indices((1, 2, 7, 5), (3, 2), 3)
_U4, _I4 = (t.numpy() for t in torch.nn.functional.max_pool3d(
    torch.from_numpy(r(2, 2, 4, 4, 6, seed=4).astype(np.float32)), 2, return_indices=True))
_BAG = np.array([1, 2, 2, 0, 5, 6, 3, 0])
_OFFSETS = np.array([0, 2, 2, 5, 7])
_THETA = np.array([[[0.9, -0.2, 0.1], [0.3, 1.1, -0.2]], [[1.2, 0.1, 0.0], [-0.1, 0.8, 0.3]]])


def _labels(rows, c, seed):
    """multilabel_margin_loss targets: a few class indices per row, then -1 (and arbitrary values after it)."""
    rng = np.random.default_rng(seed)
    out = np.full((rows, c), -1, np.int64)
    for row in range(rows):
        k = int(rng.integers(0, c))
        out[row, :k] = rng.permutation(c)[:k]
        if k + 1 < c:
            out[row, k + 1:] = rng.integers(0, c, size=c - k - 1)
    return out


CASES = [
    ("max_pool1d_with_indices", lambda F, x: F.max_pool1d_with_indices(x, 3, 2), (r(2, 3, 9),), {}),
    ("max_pool2d_with_indices", lambda F, x: F.max_pool2d_with_indices(x, 2), (r(2, 3, 6, 4),), {}),
    ("adaptive_max_pool1d_with_indices", lambda F, x: F.adaptive_max_pool1d_with_indices(x, 3), (r(2, 3, 8),), {}),
    ("adaptive_max_pool2d_with_indices", lambda F, x: F.adaptive_max_pool2d_with_indices(x, (2, 3)),
     (r(2, 3, 5, 7),), {}),
    ("celu_", lambda F, x: F.celu_(x * 1.0, 0.7), (r(3, 4),), {}),
    ("selu_", lambda F, x: F.selu_(x * 1.0), (r(3, 4),), {}),
    ("pixel_shuffle", lambda F, x: F.pixel_shuffle(x, 2), (r(2, 8, 3, 5),), {}),
    ("pixel_shuffle_3d", lambda F, x: F.pixel_shuffle(x, 3), (r(9, 2, 3),), {}),
    ("pixel_shuffle_5d", lambda F, x: F.pixel_shuffle(x, 2), (r(2, 1, 4, 3, 2),), {}),
    ("pixel_unshuffle", lambda F, x: F.pixel_unshuffle(x, 2), (r(2, 3, 4, 6),), {}),
    ("pixel_unshuffle_3d", lambda F, x: F.pixel_unshuffle(x, 3), (r(1, 6, 3),), {}),
    ("channel_shuffle", lambda F, x: F.channel_shuffle(x, 3), (r(2, 6, 4, 3),), {}),
    ("channel_shuffle_3d", lambda F, x: F.channel_shuffle(x, 2), (r(2, 4, 5),), {}),
    ("local_response_norm_3d", lambda F, x: F.local_response_norm(x, 3), (r(2, 6, 5),), {}),
    ("local_response_norm_4d", lambda F, x: F.local_response_norm(x, 4, alpha=0.1, beta=0.6, k=2.0),
     (r(2, 5, 3, 4),), {}),
    ("local_response_norm_5d", lambda F, x: F.local_response_norm(x, 2, alpha=0.3), (r(1, 4, 2, 3, 2),), {}),
    ("local_response_norm_wide", lambda F, x: F.local_response_norm(x, 7, alpha=0.2), (r(2, 3, 4),), {}),
    ("lp_pool1d", lambda F, x: F.lp_pool1d(x, 2, 3, 2), (r(2, 3, 9),), {}),
    ("lp_pool1d_p3", lambda F, x: F.lp_pool1d(x, 3, 2), (r(2, 3, 8, low=0.2, high=2.0),), {}),
    ("lp_pool2d", lambda F, x: F.lp_pool2d(x, 2, (2, 3), ceil_mode=True), (r(2, 2, 5, 7),), {}),
    ("lp_pool2d_p1_5", lambda F, x: F.lp_pool2d(x, 1.5, 2), (r(1, 2, 4, 4, low=0.2, high=2.0),), {}),
    ("max_unpool1d", lambda F, x, i: F.max_unpool1d(x, i, 2), (_U1, Const(_I1)), {}),
    ("max_unpool1d_size", lambda F, x, i: F.max_unpool1d(x, i, 2, output_size=[2, 3, 9]), (_U1, Const(_I1)), {}),
    ("max_unpool2d", lambda F, x, i: F.max_unpool2d(x, i, 2), (_U2, Const(_I2)), {}),
    ("max_unpool2d_stride", lambda F, x, i: F.max_unpool2d(x, i, (3, 2), output_size=(7, 5)), (_U3, Const(_I3)), {}),
    ("multi_margin_loss", lambda F, x, t: F.multi_margin_loss(x, t), (r(5, 4), Const(ints(4, 5))), {}),
    ("multi_margin_loss_p2", lambda F, x, t, w: F.multi_margin_loss(x, t, p=2, margin=0.5, weight=w),
     (r(5, 4), Const(ints(4, 5)), Const(r(4, low=0.1, high=1.0))), {}),
    ("multi_margin_loss_none", lambda F, x, t: F.multi_margin_loss(x, t, reduction="none"),
     (r(3, 6), Const(ints(6, 3))), {}),
    ("multi_margin_loss_unbatched", lambda F, x, t: F.multi_margin_loss(x, t, reduction="sum"),
     (r(5), Const(np.array(2))), {}),
    ("multilabel_margin_loss", lambda F, x, t: F.multilabel_margin_loss(x, t), (r(4, 5), Const(_labels(4, 5, 0))), {}),
    ("multilabel_margin_loss_none", lambda F, x, t: F.multilabel_margin_loss(x, t, reduction="none"),
     (r(6, 3), Const(_labels(6, 3, 1))), {}),
    ("multilabel_margin_loss_unbatched", lambda F, x, t: F.multilabel_margin_loss(x, t),
     (r(4), Const(np.array([2, 0, -1, 3]))), {}),
    ("pdist", lambda F, x: F.pdist(x), (r(5, 3),), {}),
    ("pdist_p1", lambda F, x: F.pdist(x, 1), (r(4, 6),), {}),
    ("pdist_p3", lambda F, x: F.pdist(x, 3.0), (r(4, 2),), {}),
    ("triplet_distance", lambda F, a, p, n: F.triplet_margin_with_distance_loss(a, p, n), (r(4, 5), r(4, 5), r(4, 5)),
     {}),
    ("triplet_distance_cosine", lambda F, a, p, n: F.triplet_margin_with_distance_loss(
        a, p, n, distance_function=lambda x, y: 1.0 - F.cosine_similarity(x, y), margin=0.5, swap=True,
        reduction="none"), (r(4, 5), r(4, 5), r(4, 5)), {}),
    ("upsample", lambda F, x: F.upsample(x, scale_factor=2, mode="bilinear"), (r(1, 2, 3, 4),), {}),
    ("upsample_nearest", lambda F, x: F.upsample_nearest(x, size=(5, 3)), (r(1, 2, 3, 4),), {}),
    ("upsample_bilinear", lambda F, x: F.upsample_bilinear(x, scale_factor=2), (r(1, 2, 3, 4),), {}),
    ("affine_grid", lambda F, t: F.affine_grid(t, (2, 3, 4, 5), align_corners=False), (_THETA,), {}),
    ("affine_grid_ac", lambda F, t: F.affine_grid(t, [2, 1, 3, 1], align_corners=True), (_THETA,), {}),
    ("grid_sample", lambda F, x, g: F.grid_sample(x, g, align_corners=False), (r(2, 3, 4, 5), r(2, 3, 6, 2) * 0.7),
     {}),
    ("grid_sample_ac", lambda F, x, g: F.grid_sample(x, g, align_corners=True), (r(2, 2, 5, 4), r(2, 4, 3, 2) * 0.7),
     {}),
    ("grid_sample_outside", lambda F, x, g: F.grid_sample(x, g, align_corners=False),
     (r(1, 2, 4, 4), r(1, 5, 5, 2) * 1.5), {}),
    ("grid_sample_border", lambda F, x, g: F.grid_sample(x, g, padding_mode="border", align_corners=False),
     (r(1, 2, 4, 3), r(1, 5, 4, 2) * 1.5), {}),
    ("grid_sample_border_ac", lambda F, x, g: F.grid_sample(x, g, padding_mode="border", align_corners=True),
     (r(1, 2, 4, 3), r(1, 5, 4, 2) * 1.5), {}),
    ("grid_sample_nearest", lambda F, x, g: F.grid_sample(x, g, mode="nearest", align_corners=False),
     (r(2, 2, 5, 4), Const(r(2, 3, 3, 2) * 1.2)), {}),
    ("grid_sample_of_affine_grid", lambda F, x, t: F.grid_sample(x, F.affine_grid(t, (2, 2, 3, 3), False), "bilinear",
                                                                 "zeros", False), (r(2, 2, 5, 4), _THETA), {}),
    ("embedding_bag_mean", lambda F, i, w, o: F.embedding_bag(i, w, o), (Const(_BAG), r(7, 3), Const(_OFFSETS)), {}),
    ("embedding_bag_sum_last", lambda F, i, w, o: F.embedding_bag(i, w, o, mode="sum", include_last_offset=True),
     (Const(_BAG), r(7, 3), Const(np.array([0, 2, 2, 5, 8]))), {}),
    ("embedding_bag_max", lambda F, i, w, o: F.embedding_bag(i, w, o, mode="max"),
     (Const(_BAG), r(7, 3), Const(_OFFSETS)), {}),
    ("embedding_bag_padding", lambda F, i, w, o: F.embedding_bag(i, w, o, padding_idx=2),
     (Const(_BAG), r(7, 3), Const(_OFFSETS)), {}),
    ("embedding_bag_2d_max_padding", lambda F, i, w: F.embedding_bag(i, w, mode="max", padding_idx=0),
     (Const(_BAG.reshape(2, 4)), r(7, 3)), {}),
    ("embedding_bag_weights", lambda F, i, w, p: F.embedding_bag(i, w, mode="sum", per_sample_weights=p),
     (Const(_BAG.reshape(4, 2)), r(7, 3), r(4, 2)), {}),
    ("avg_pool3d", lambda F, x: F.avg_pool3d(x, 2), (r(2, 3, 4, 4, 6),), {}),
    ("avg_pool3d_pad", lambda F, x: F.avg_pool3d(x, (3, 2, 3), (2, 1, 2), (1, 0, 1)), (r(2, 2, 5, 4, 6),), {}),
    ("avg_pool3d_nocount_ceil", lambda F, x: F.avg_pool3d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
     (r(1, 2, 6, 5, 7),), {}),
    ("avg_pool3d_divisor", lambda F, x: F.avg_pool3d(x, 2, 1, 1, divisor_override=5), (r(1, 2, 3, 4, 3),), {}),
    ("avg_pool3d_unbatched", lambda F, x: F.avg_pool3d(x, (1, 2, 2)), (r(3, 2, 4, 4),), {}),
    ("max_pool3d", lambda F, x: F.max_pool3d(x, 2), (r(2, 3, 4, 4, 6),), {}),
    ("max_pool3d_opts", lambda F, x: F.max_pool3d(x, (3, 2, 2), (2, 1, 2), (1, 0, 1), (1, 2, 1), ceil_mode=True),
     (r(1, 2, 6, 7, 5),), {}),
    ("max_pool3d_indices", lambda F, x: F.max_pool3d(x, (3, 2, 2), (2, 1, 2), (1, 0, 1), (1, 2, 1), True, True),
     (r(1, 2, 7, 6, 5),), {}),
    ("max_pool3d_indices_ties", lambda F, x: F.max_pool3d_with_indices(x, 2, 1), (np.round(r(1, 2, 4, 4, 4)),), {}),
    ("max_pool3d_unbatched", lambda F, x: F.max_pool3d(x, 3, 2, 1), (r(2, 5, 5, 5),), {}),
    ("adaptive_avg_pool3d", lambda F, x: F.adaptive_avg_pool3d(x, (2, None, 3)), (r(2, 2, 5, 6, 7),), {}),
    ("adaptive_avg_pool3d_1", lambda F, x: F.adaptive_avg_pool3d(x, 1), (r(2, 3, 3, 4, 2),), {}),
    ("adaptive_max_pool3d", lambda F, x: F.adaptive_max_pool3d(x, (3, 2, 4)), (r(2, 2, 5, 6, 7),), {}),
    ("lp_pool3d", lambda F, x: F.lp_pool3d(x, 2, (2, 2, 3), 1), (r(1, 2, 4, 4, 5),), {}),
    ("conv3d", lambda F, x, w, b: F.conv3d(x, w, b), (r(2, 3, 5, 6, 4), r(4, 3, 3, 3, 2), r(4)), {}),
    ("conv3d_opts", lambda F, x, w: F.conv3d(x, w, None, (2, 1, 2), (1, 2, 0), (2, 1, 1), 2),
     (r(2, 4, 7, 5, 6), r(6, 2, 2, 3, 3)), {}),
    ("conv3d_same", lambda F, x, w, b: F.conv3d(x, w, b, padding="same", dilation=(1, 2, 1)),
     (r(1, 2, 4, 6, 5), r(3, 2, 2, 3, 4), r(3)), {}),
    ("conv3d_unbatched", lambda F, x, w: F.conv3d(x, w, padding=1), (r(2, 3, 4, 4), r(2, 2, 3, 3, 3)), {}),
    ("conv3d_f64", lambda F, x, w, b: F.conv3d(x, w, b, stride=2, padding=1), (r(1, 2, 5, 5, 5), r(3, 2, 3, 3, 3),
                                                                                r(3)), {"dtype": np.float64}),
    ("conv_transpose3d", lambda F, x, w, b: F.conv_transpose3d(x, w, b), (r(2, 3, 3, 4, 2), r(3, 4, 2, 3, 3), r(4)),
     {}),
    ("conv_transpose3d_opts", lambda F, x, w: F.conv_transpose3d(x, w, None, (2, 1, 2), (1, 0, 1), (1, 0, 1), 2,
                                                                 (1, 2, 1)), (r(1, 4, 3, 3, 4), r(4, 3, 3, 2, 3)), {}),
    ("conv_transpose3d_unbatched", lambda F, x, w: F.conv_transpose3d(x, w, stride=2, padding=1),
     (r(2, 3, 3, 3), r(2, 2, 3, 3, 3)), {}),
    ("max_unpool3d", lambda F, x, i: F.max_unpool3d(x, i, 2), (_U4, Const(_I4)), {}),
    ("grid_sample_f64", lambda F, x, g: F.grid_sample(x, g, align_corners=False), (r(1, 2, 4, 5), r(1, 3, 3, 2)),
     {"dtype": np.float64}),
]


@pytest.mark.parametrize("fn, inputs, options", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_against_torch(fn, inputs, options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(fn, *inputs, **options)


def test_every_name_of_torch_functional_used_in_training_exists():
    names = ["normalize", "cosine_similarity", "pairwise_distance", "triplet_margin_loss", "margin_ranking_loss",
             "hinge_embedding_loss", "cosine_embedding_loss", "multi_margin_loss", "poisson_nll_loss",
             "gaussian_nll_loss", "softmin", "glu", "hardswish", "hardsigmoid", "mish", "relu6", "selu", "celu",
             "logsigmoid", "softsign", "tanhshrink", "threshold", "local_response_norm", "instance_norm", "unfold",
             "fold", "pixel_shuffle", "pixel_unshuffle", "avg_pool1d", "adaptive_max_pool2d", "grid_sample",
             "affine_grid", "alpha_dropout", "feature_alpha_dropout", "gumbel_softmax", "lp_pool1d", "lp_pool2d",
             "max_unpool1d", "max_unpool2d", "multilabel_margin_loss", "pdist", "channel_shuffle",
             "embedding_bag", "conv3d", "avg_pool3d", "max_pool3d", "adaptive_avg_pool3d", "adaptive_max_pool3d",
             "lp_pool3d", "conv_transpose3d", "max_unpool3d",
             "max_pool3d_with_indices"]
    assert [n for n in names if not hasattr(DF, n)] == []


def test_upsample_warns_deprecated_like_torch():
    for F in (DF, torch.nn.functional):
        lib = dtorch if F is DF else torch
        with pytest.warns(UserWarning, match="deprecated"):
            F.upsample_bilinear(lib.ones(1, 1, 2, 2), scale_factor=2)


@pytest.mark.parametrize("name", ["alpha_dropout", "feature_alpha_dropout"])
def test_alpha_dropout_keeps_mean_and_variance(name):
    p = 0.3
    x = dtorch.randn(200, 50, 4)
    assert getattr(DF, name)(x, p, training=False) is x
    dtorch.manual_seed(0)
    out = getattr(DF, name)(x, p, training=True).numpy()
    alpha = 1.7580993408473766
    a = 1.0 / np.sqrt((alpha ** 2 * p + 1) * (1 - p))
    dropped = np.isclose(out, a * alpha * (p - 1))
    np.testing.assert_allclose(out[~dropped], a * x.numpy()[~dropped] + a * alpha * p, rtol=1e-5, atol=1e-6)
    assert abs(dropped.mean() - p) < 0.03
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1.0) < 0.05
    if name == "feature_alpha_dropout":  # whole channels: every position of a (sample, channel) agrees
        assert (dropped == dropped[..., :1]).all()
    assert getattr(DF, name)(x, 1.0, training=True).abs().sum().item() == 0.0


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_samples_and_straight_through_gradient(hard):
    logits = dtorch.tensor(r(6, 5, seed=3).astype(np.float32), requires_grad=True)
    dtorch.manual_seed(1)
    out = DF.gumbel_softmax(logits, tau=0.5, hard=hard)
    values = out.detach().numpy()
    np.testing.assert_allclose(values.sum(-1), 1.0, rtol=1e-5)
    if hard:
        assert set(np.unique(values)) <= {0.0, 1.0}
    weights = dtorch.tensor(r(6, 5, seed=4).astype(np.float32))
    (out * weights).sum().backward()
    # the gradient is that of the soft sample: softmax's Jacobian, rows sum to zero
    np.testing.assert_allclose(logits.grad.numpy().sum(-1), 0.0, atol=1e-5)
    assert np.abs(logits.grad.numpy()).sum() > 0


def test_max_unpool_errors_like_torch():
    for F, lib in ((DF, dtorch), (torch.nn.functional, torch)):
        x, idx = F.max_pool2d(lib.ones(1, 1, 4, 4), 2, return_indices=True)
        with pytest.raises(ValueError):
            F.max_unpool2d(x, idx, 2, output_size=(9, 9))
        with pytest.raises(RuntimeError):
            F.pixel_shuffle(lib.ones(1, 3, 2, 2), 2)
        with pytest.raises(ValueError):
            F.local_response_norm(lib.ones(2, 3), 2)
        with pytest.raises(RuntimeError):
            F.pdist(lib.ones(2, 3, 4))
