"""Gradients of gradients (``create_graph=True``) against PyTorch for every differentiable op, one line per case,
plus ``gradcheck``/``gradgradcheck`` in float64 and the two programs that need them most: a WGAN-GP gradient
penalty on a conv critic and a MAML inner step."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op

CASES = [
    ("mul", lambda a, b: a * b, [(3, 4), (4,)], {}),
    ("div", lambda a, b: a / b, [(3, 4), (4,)], {"low": 0.5}),
    ("add sub", lambda a, b: (a + b) * (a - b), [(3,), (3,)], {}),
    ("pow tensor", lambda a, b: a ** b, [(3,), (3,)], {"low": 0.5}),
    ("pow scalar", lambda a: a ** 3, [(3,)], {}),
    ("rpow", lambda a: 2.0 ** a, [(3,)], {}),
    ("exp", lambda a: a.exp(), [(3,)], {}),
    ("log", lambda a: a.log(), [(3,)], {"low": 0.5}),
    ("log1p", lambda a: a.log1p(), [(3,)], {"low": 0.5}),
    ("sqrt", lambda a: a.sqrt(), [(3,)], {"low": 0.5}),
    ("rsqrt", lambda a: a.rsqrt(), [(3,)], {"low": 0.5}),
    ("sin cos", lambda a: a.sin() * a.cos(), [(3,)], {}),
    ("tanh", lambda a: a.tanh(), [(3,)], {}),
    ("sigmoid", lambda a: a.sigmoid(), [(3,)], {}),
    ("abs", lambda a: a.abs() * a, [(3,)], {}),
    ("relu", lambda a: a.relu() * a, [(3,)], {}),
    ("silu", lambda a: torch.nn.functional.silu(a) if isinstance(a, torch.Tensor) else dtorch.silu(a), [(4,)], {}),
    ("gelu", lambda a: torch.nn.functional.gelu(a) if isinstance(a, torch.Tensor) else dtorch.gelu(a), [(4,)], {}),
    ("gelu tanh", lambda a: torch.nn.functional.gelu(a, approximate="tanh") if isinstance(a, torch.Tensor)
     else dtorch.gelu(a, approximate="tanh"), [(4,)], {}),
    ("softplus", lambda a: torch.nn.functional.softplus(a) if isinstance(a, torch.Tensor) else dtorch.softplus(a),
     [(4,)], {}),
    ("erf", lambda a: a.erf(), [(4,)], {}),
    ("maximum", lambda a, b: a.maximum(b) * a, [(3, 4), (4,)], {}),
    ("minimum", lambda a, b: a.minimum(b) * b, [(3, 4), (4,)], {}),
    ("where", lambda a, b: (a > 0).float() * 0 + (a * a).where(a > b, b * b), [(3,), (3,)], {}),
    ("clamp", lambda a: a.clamp(-0.5, 0.5) * a, [(5,)], {}),
    ("sum", lambda a: (a * a).sum(1), [(3, 4)], {}),
    ("mean", lambda a: (a * a).mean((0, 1), keepdim=True), [(3, 4)], {}),
    ("var", lambda a: a.var(1), [(3, 4)], {}),
    ("std", lambda a: a.std(), [(3, 4)], {}),
    ("norm", lambda a: a.norm(dim=1), [(3, 4)], {}),
    ("logsumexp", lambda a: a.logsumexp(1), [(3, 4)], {}),
    ("amax", lambda a: (a * a).amax(1), [(3, 4)], {}),
    ("cumsum", lambda a: (a * a).cumsum(1), [(3, 4)], {}),
    ("matmul", lambda a, b: (a @ b) * (a @ b), [(2, 3), (3, 4)], {}),
    ("matmul batched", lambda a, b: (a @ b).pow(2), [(2, 2, 3), (3,)], {}),
    ("reshape transpose", lambda a: (a.t().reshape(-1) ** 2).expand(2, -1), [(3, 4)], {}),
    ("prod", lambda a: a.prod(1), [(3, 4)], {"low": 0.5}),
    ("max dim", lambda a: (a * a).max(1).values, [(3, 4)], {}),
    ("norm p", lambda a: a.norm(p=3, dim=0), [(3, 4)], {}),
    ("einsum", lambda a, b: (torch if isinstance(a, torch.Tensor) else dtorch).einsum("ij,jk->ik", a, b) ** 2,
     [(2, 3), (3, 4)], {}),
    ("bmm", lambda a, b: a.bmm(b) * a.sum(), [(2, 2, 3), (2, 3, 2)], {}),
    ("prod tuple", lambda a: a.prod() * a.prod(0).sum(), [(2, 3)], {"low": 0.5}),
    ("prod with a zero", lambda a: (a * a).prod(1), [np.array([[0.0, 1.5, -2.0], [1.0, 0.5, 2.0]])], {}),
    ("cumprod", lambda a: a.cumprod(1), [(2, 4)], {}),
    ("min dim", lambda a: (a ** 3).min(0).values, [(3, 4)], {}),
    ("cat stack", lambda a, b: (torch if isinstance(a, torch.Tensor) else dtorch).stack([a * b, a.exp()]), [(3,), (3,)],
     {}),
]


@pytest.mark.parametrize("name, fn, shapes, options", CASES, ids=[c[0] for c in CASES])
def test_second_order_matches_torch(name, fn, shapes, options):
    check_op(fn, None, shapes, second_order=True, **options)
    check_op(fn, None, shapes, second_order=True, dtype="float64", **options)


# ---- every op with a fused or index-based backward -------------------------------------------------------------------


def lib(x):
    """``torch`` or ``dtorch``, whichever ``x`` belongs to."""
    return torch if isinstance(x, torch.Tensor) else dtorch


def nnf(name, **kwargs):
    """``nn.functional.<name>(*args, **kwargs)`` of the library of the first argument."""
    return lambda *args: getattr(lib(args[0]).nn.functional, name)(*args, **kwargs)


def squared(fn):
    """``fn(...) ** 2``: the square makes the second derivative depend on the input (not only on the gradient)."""
    return lambda *args: fn(*args) ** 2


def _weight(x, values):
    return lib(x).tensor(values, dtype=x.dtype)


OP_CASES = [
    # slicing, views, indexing
    ("slice", lambda x: x[:, :2] ** 2, [(3, 4)]),
    ("step slice and int", lambda x: x[1, ::2] ** 3, [(3, 4)]),
    ("split", lambda x: x.split(2, 1)[0] ** 2 * x.split(2, 1)[1], [(3, 4)]),
    ("chunk", lambda x: x.chunk(3, 0)[2] ** 2, [(3, 4)]),
    ("unbind", lambda x: x.unbind(0)[1] ** 2, [(3, 4)]),
    ("cat", lambda x, y: lib(x).cat([x * y, x ** 2], 1) ** 2, [(3, 4), (3, 4)]),
    ("narrow", lambda x: x.narrow(1, 1, 2) ** 2, [(3, 4)]),
    ("advanced index", lambda x: x[[0, 2, 2]] ** 2, [(3, 4)]),
    ("mask index", lambda x: x[x.detach() > 0] ** 3, [(3, 4)]),
    ("index_select", lambda x, i: x.index_select(1, i) ** 2, [(3, 4), np.array([0, 0, 3])]),
    ("gather", lambda x, i: x.gather(1, i) ** 2, [(3, 4), np.array([[0], [1], [3]])]),
    ("scatter", lambda x, i, s: x.scatter(1, i, s) ** 2, [(3, 4), np.array([[0, 2], [1, 0], [3, 1]]), (3, 2)]),
    ("scatter_add", lambda x, i, s: x.scatter_add(1, i, s) ** 2, [(3, 4), np.array([[0], [1], [3]]), (3, 1)]),
    ("setitem slice", lambda x, y: _set(x * 1, (slice(None), 1), y * y) ** 2, [(3, 4), (3,)]),
    ("setitem index", lambda x, y: _set(x * 1, ([0, 2],), y * y) ** 2, [(3, 4), (4,)]),
    ("in-place on a view", lambda x, y: _mul_row(x * 1, y) ** 2, [(3, 4), (4,)]),
    ("diagonal", lambda x: x.diagonal(1, 1, 0) ** 2, [(4, 3)]),
    ("diagonal 3-d", lambda x: x.diagonal(-1, 0, 2) ** 2, [(3, 2, 5)]),
    ("diag_embed", lambda x: x.diag_embed(1) ** 2, [(2, 3)]),
    ("sort", lambda x: x.sort(1, descending=True).values ** 2 * x, [(3, 4)]),
    ("topk", lambda x: x.topk(2, 0).values ** 2, [(3, 4)]),
    ("einsum repeated letter", lambda x, y: lib(x).einsum("iij,jk->ik", x, y) ** 2, [(3, 3, 2), (2, 4)]),
    ("remainder", lambda a, b: (a * 3).remainder(b + 3) ** 2 * b, [(3, 4), (4,)]),
    ("fmod", lambda a, b: (a * 3).fmod(b + 3) ** 2 * b, [(3, 4), (4,)]),
    # linear algebra
    ("inv", lambda x: lib(x).linalg.inv(x + 3 * lib(x).eye(3, dtype=x.dtype)) ** 2, [(2, 3, 3)]),
    ("det", lambda x: lib(x).linalg.det(x + 3 * lib(x).eye(3, dtype=x.dtype)) ** 2, [(2, 3, 3)]),
    ("solve", lambda a, b: lib(a).linalg.solve(a + 3 * lib(a).eye(3, dtype=a.dtype), b) ** 2, [(3, 3), (2, 3, 2)]),
    ("solve vector", lambda a, b: lib(a).linalg.solve(a + 3 * lib(a).eye(3, dtype=a.dtype), b) ** 2, [(3, 3), (3,)]),
    # softmax, normalisation, embedding, padding, attention
    ("softmax", lambda x: x.softmax(1) ** 2, [(3, 4)]),
    ("log_softmax", lambda x: x.log_softmax(0) ** 2, [(3, 4)]),
    ("layer_norm", lambda x, w, b: nnf("layer_norm")(x, (4,), w, b) ** 2, [(3, 4), (4,), (4,)]),
    ("layer_norm two axes", lambda x: nnf("layer_norm")(x, (3, 4)) ** 2, [(2, 3, 4)]),
    ("batch_norm train", squared(nnf("batch_norm", training=True)), [(4, 3, 2), None, None, (3,), (3,)]),
    ("batch_norm eval", lambda x, w, b: nnf("batch_norm")(x, _weight(x, [0.1, 0.2, -0.3]), _weight(x, [1.5, 0.5, 2.0]),
                                                          w, b) ** 2, [(4, 3, 2), (3,), (3,)]),
    ("group_norm", lambda x, w, b: nnf("group_norm")(x, 2, w, b) ** 2, [(2, 4, 3), (4,), (4,)]),
    ("embedding", lambda w: nnf("embedding", padding_idx=1)(lib(w).tensor([[0, 2], [2, 1]]), w) ** 2, [(3, 4)]),
    ("pad constant", squared(nnf("pad", pad=(1, -1, 2, 0))), [(2, 3, 4)]),
    ("pad reflect", squared(nnf("pad", pad=(2, 1), mode="reflect")), [(2, 3, 4)]),
    ("pad replicate", squared(nnf("pad", pad=(1, 2, 2, 0), mode="replicate")), [(1, 2, 3, 4)]),
    ("attention", squared(nnf("scaled_dot_product_attention")), [(2, 3, 4), (2, 5, 4), (2, 5, 3)]),
    ("attention causal", squared(nnf("scaled_dot_product_attention", is_causal=True)), [(2, 4, 4), (2, 4, 4), (2, 4, 3)]),
    ("attention float mask", squared(nnf("scaled_dot_product_attention")), [(2, 3, 4), (2, 5, 4), (2, 5, 3), (3, 5)]),
    ("attention bool mask", lambda q, k, v: nnf("scaled_dot_product_attention")(
        q, k, v, lib(q).tensor([[True, False, True, True, False], [False, True, True, False, True]] + [[True] * 5]))
     ** 2, [(2, 3, 4), (2, 5, 4), (2, 5, 3)]),
    # losses
    ("mse_loss", squared(nnf("mse_loss")), [(3, 4), (3, 4)]),
    ("mse_loss none broadcast", squared(nnf("mse_loss", reduction="none")), [(3, 4), (3, 4)]),
    ("l1_loss", lambda x, t: nnf("l1_loss", reduction="sum")(x * x, t) ** 2, [(3, 4), (3, 4)]),
    ("smooth_l1_loss", squared(nnf("smooth_l1_loss", beta=0.7)), [(3, 4), (3, 4)]),
    ("huber_loss", squared(nnf("huber_loss", delta=0.8)), [(3, 4), (3, 4)]),
    ("cross_entropy", lambda x: nnf("cross_entropy")(x, lib(x).tensor([0, 3, 1])) ** 2, [(3, 4)]),
    ("cross_entropy none", lambda x: nnf("cross_entropy", reduction="none")(x, lib(x).tensor([0, 3, 1])), [(3, 4)]),
    ("cross_entropy 4-d smoothing weight ignore", lambda x: nnf(
        "cross_entropy", label_smoothing=0.1, ignore_index=1, weight=_weight(x, [1.0, 2.0, 0.5]))(
        x, lib(x).tensor([[[0, 1], [2, 2]], [[1, 0], [0, 2]]])) ** 2, [(2, 3, 2, 2)]),
    ("cross_entropy probabilities", lambda x, t: nnf("cross_entropy", label_smoothing=0.2)(x, t.softmax(1)) ** 2,
     [(3, 4), (3, 4)]),
    ("nll_loss", lambda x: nnf("nll_loss")(x.log_softmax(1), lib(x).tensor([0, 3, 1])) ** 2, [(3, 4)]),
    ("nll_loss sum weight", lambda x: nnf("nll_loss", reduction="sum", weight=_weight(x, [1.0, 2.0, 0.5, 3.0]))(
        x.log_softmax(1) * x, lib(x).tensor([0, 3, 1])), [(3, 4)]),
    ("binary_cross_entropy", lambda x, t: nnf("binary_cross_entropy")(x.sigmoid(), t.sigmoid()) ** 2,
     [(3, 4), (3, 4)]),
    ("binary_cross_entropy weight", lambda x, t: nnf("binary_cross_entropy")(
        x.sigmoid(), t.sigmoid(), _weight(x, [1.0, 2.0, 0.5, 0.3])) ** 2, [(3, 4), (3, 4)]),
    ("binary_cross_entropy_with_logits", lambda x, t, p: lib(x).nn.functional.binary_cross_entropy_with_logits(
        x, t.sigmoid(), _weight(x, [1.0, 2.0, 0.5, 0.3]), pos_weight=p.detach().exp()) ** 2 + p.sum() * 0,
     [(3, 4), (3, 4), (4,)]),
    ("kl_div", lambda x, t: nnf("kl_div", reduction="batchmean")(x.log_softmax(1), t.softmax(1)) ** 2,
     [(3, 4), (3, 4)]),
    ("kl_div log_target", lambda x, t: nnf("kl_div", reduction="sum", log_target=True)(
        x.log_softmax(1), t.log_softmax(1)) ** 2, [(3, 4), (3, 4)]),
    # convolution, pooling, resampling
    ("conv2d", squared(nnf("conv2d", stride=2, padding=1)), [(2, 3, 5, 6), (4, 3, 3, 2), (4,)]),
    ("conv2d groups dilation same", squared(nnf("conv2d", groups=2, dilation=2, padding="same")),
     [(2, 4, 6, 5), (4, 2, 2, 3)]),
    ("conv1d", squared(nnf("conv1d", padding=2)), [(2, 3, 7), (4, 3, 3), (4,)]),
    ("conv_transpose2d", squared(nnf("conv_transpose2d", stride=2, padding=1, output_padding=1)),
     [(2, 4, 3, 3), (4, 3, 3, 3), (3,)]),
    ("conv_transpose2d groups", squared(nnf("conv_transpose2d", stride=2, groups=2, dilation=2)),
     [(2, 4, 3, 3), (4, 1, 2, 2)]),
    ("conv_transpose1d", squared(nnf("conv_transpose1d", stride=3)), [(2, 4, 3), (4, 2, 2)]),
    ("max_pool2d", squared(nnf("max_pool2d", kernel_size=3, stride=2, padding=1, ceil_mode=True)), [(2, 3, 7, 6)]),
    ("max_pool2d dilation", squared(nnf("max_pool2d", kernel_size=2, dilation=2)), [(2, 2, 6, 6)]),
    ("max_pool1d", squared(nnf("max_pool1d", kernel_size=2)), [(2, 3, 6)]),
    ("avg_pool2d", squared(nnf("avg_pool2d", kernel_size=3, stride=2, padding=1, ceil_mode=True,
                               count_include_pad=False)), [(2, 3, 7, 6)]),
    ("avg_pool1d", squared(nnf("avg_pool1d", kernel_size=2)), [(2, 3, 6)]),
    ("adaptive_avg_pool2d", squared(nnf("adaptive_avg_pool2d", output_size=(3, 2))), [(2, 3, 7, 5)]),
    ("adaptive_avg_pool2d to 1", squared(nnf("adaptive_avg_pool2d", output_size=1)), [(2, 3, 7, 5)]),
    ("adaptive_max_pool2d", squared(nnf("adaptive_max_pool2d", output_size=(3, 2))), [(2, 3, 7, 5)]),
    ("interpolate bilinear", squared(nnf("interpolate", scale_factor=2, mode="bilinear")), [(2, 3, 3, 4)]),
    ("interpolate nearest", squared(nnf("interpolate", size=(5, 3), mode="nearest")), [(2, 3, 3, 4)]),
    ("interpolate bicubic", squared(nnf("interpolate", scale_factor=1.5, mode="bicubic")), [(1, 2, 3, 4)]),
    ("grid_sample reflection", lambda x, g: nnf("grid_sample", padding_mode="reflection", align_corners=False)(
        x, g * 2) ** 2, [(1, 2, 3, 4), (1, 2, 3, 2)]),
    ("unfold", squared(nnf("unfold", kernel_size=2, padding=1)), [(2, 3, 3, 4)]),
    ("fold", squared(nnf("fold", output_size=(3, 4), kernel_size=2, padding=1)), [(2, 12, 20)]),
]


OP_CASES += [
    # elementwise, activations, norms and losses composed in the front end
    ("expm1", lambda x: x.expm1() ** 2, [(4,)]),
    ("exp2", lambda x: x.exp2() * x, [(4,)]),
    ("sinh cosh", lambda x: x.sinh() * x.cosh(), [(4,)]),
    ("asin", lambda x: (x * 0.4).asin() ** 2, [(4,)]),
    ("acos", lambda x: (x * 0.4).acos() ** 2, [(4,)]),
    ("atan", lambda x: x.atan() ** 2, [(4,)]),
    ("atan2", lambda a, b: lib(a).atan2(a, b) ** 2, [(4,), (4,)]),
    ("hypot", lambda a, b: lib(a).hypot(a, b) ** 2, [(4,), (4,)]),
    ("logaddexp", lambda a, b: lib(a).logaddexp(a, b) ** 2, [(4,), (4,)]),
    ("frac", lambda x: x.frac() * x, [(4,)]),
    ("clamp with tensor bounds", lambda x, low: x.clamp(min=low) * x, [(4,), (4,)]),
    ("leaky_relu", lambda x: nnf("leaky_relu", negative_slope=0.1)(x) * x, [(4,)]),
    ("elu", squared(nnf("elu")), [(4,)]),
    ("selu", squared(nnf("selu")), [(4,)]),
    ("celu", squared(nnf("celu", alpha=0.5)), [(4,)]),
    ("hardtanh", lambda x: nnf("hardtanh")(x) * x, [(4,)]),
    ("mish", squared(nnf("mish")), [(4,)]),
    ("hardswish", squared(nnf("hardswish")), [(4,)]),
    ("logsigmoid", squared(nnf("logsigmoid")), [(4,)]),
    ("softmin", squared(nnf("softmin", dim=1)), [(2, 4)]),
    ("glu", squared(nnf("glu")), [(2, 4)]),
    ("prelu", lambda a, w: nnf("prelu")(a, w) * a, [(2, 3), (3,)]),
    ("bilinear", squared(nnf("bilinear")), [(2, 3), (2, 4), (5, 3, 4)]),
    ("cosine_similarity", squared(nnf("cosine_similarity")), [(3, 4), (3, 4)]),
    ("normalize", squared(nnf("normalize")), [(3, 4)]),
    ("pairwise_distance", squared(nnf("pairwise_distance")), [(3, 4), (3, 4)]),
    ("instance_norm", squared(nnf("instance_norm")), [(2, 3, 4)]),
    ("rms_norm", lambda a, w: nnf("rms_norm")(a, (4,), w) ** 2, [(2, 3, 4), (4,)]),
    ("local_response_norm", squared(nnf("local_response_norm", size=2)), [(2, 3, 4)]),
    ("pixel_shuffle", squared(nnf("pixel_shuffle", upscale_factor=2)), [(1, 4, 2, 2)]),
    ("max_pool3d", squared(nnf("max_pool3d", kernel_size=2)), [(1, 1, 4, 4, 4)]),
    ("avg_pool3d", squared(nnf("avg_pool3d", kernel_size=2)), [(1, 1, 4, 4, 4)]),
    ("conv3d", squared(nnf("conv3d")), [(1, 2, 3, 3, 3), (2, 2, 2, 2, 2)]),
    ("lp_pool2d", lambda a: nnf("lp_pool2d", norm_type=2, kernel_size=2)(a.abs() + 0.5) ** 2, [(1, 1, 4, 4)]),
    ("poisson_nll_loss", squared(nnf("poisson_nll_loss")), [(3, 4), (3, 4)]),
    ("gaussian_nll_loss", lambda a, t, v: nnf("gaussian_nll_loss")(a, t, v.exp()) ** 2, [(3, 4), (3, 4), (3, 4)]),
    ("triplet_margin_loss", squared(nnf("triplet_margin_loss")), [(3, 4), (3, 4), (3, 4)]),
    ("multilabel_soft_margin_loss", lambda a, t: nnf("multilabel_soft_margin_loss")(a, (t > 0).double()) ** 2,
     [(3, 4), (3, 4)]),
    ("cumprod", lambda x: x.cumprod(0) ** 2, [(4,)]),
    ("trace", lambda x: x.trace() ** 2, [(3, 3)]),
    ("index_add", lambda x, s: x.index_add(0, lib(x).tensor([0, 0]), s) ** 2, [(3, 4), (2, 4)]),
    ("index_copy", lambda x, s: x.index_copy(0, lib(x).tensor([2, 0]), s) ** 2, [(3, 4), (2, 4)]),
    ("take_along_dim", lambda x: lib(x).take_along_dim(x, lib(x).tensor([[0], [2], [1]]), 1) ** 2, [(3, 4)]),
    ("repeat_interleave", lambda x: x.repeat_interleave(2, 0) ** 2, [(3, 4)]),
    ("tile", lambda x: x.tile(2, 1) ** 2, [(3, 4)]),
    ("to float64 and cpu", lambda x: x.double().to("cpu") ** 2, [(3,)]),
]


def _set(target, key, value):
    target[key] = value
    return target


def _mul_row(target, row):
    target[1].mul_(row)
    return target


@pytest.mark.parametrize("name, fn, shapes", OP_CASES, ids=[c[0] for c in OP_CASES])
def test_op_second_order_matches_torch(name, fn, shapes):
    check_op(fn, None, shapes, second_order=True, dtype="float64")


# ---- gradcheck and gradgradcheck in float64 ---------------------------------------------------------------------------


def _inputs(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [dtorch.tensor(rng.uniform(-1, 1, size=s), dtype=dtorch.float64, requires_grad=True) for s in shapes]


F = dtorch.nn.functional
GRADGRAD_CASES = [
    ("slice cat", lambda x: dtorch.cat([x[:, :2], x[:, 1:] ** 2], 1), [(2, 3)]),
    ("index gather", lambda x: x[[0, 1, 1]].gather(1, dtorch.tensor([[2], [0], [1]])) ** 2, [(2, 3)]),
    ("softmax", lambda x: x.softmax(-1), [(2, 3)]),
    ("log_softmax", lambda x: x.log_softmax(0), [(2, 3)]),
    ("layer_norm", lambda x, w: F.layer_norm(x, (3,), w), [(2, 3), (3,)]),
    ("batch_norm", lambda x: F.batch_norm(x, None, None, training=True), [(3, 2)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, dtorch.tensor([2, 0])), [(2, 3)]),
    ("nll_loss", lambda x: F.nll_loss(x.log_softmax(1) ** 2, dtorch.tensor([2, 0])), [(2, 3)]),
    ("mse_loss", lambda x, t: F.mse_loss(x ** 2, t), [(2, 3), (2, 3)]),
    ("conv2d", lambda x, w: F.conv2d(x, w, padding=1, stride=2), [(1, 2, 3, 3), (2, 2, 2, 2)]),
    ("conv1d", lambda x, w: F.conv1d(x, w) ** 2, [(1, 2, 4), (1, 2, 2)]),
    ("max_pool2d", lambda x: F.max_pool2d(x ** 2, 2), [(1, 1, 4, 4)]),
    ("avg_pool2d", lambda x: F.avg_pool2d(x ** 2, 2, padding=1), [(1, 1, 3, 3)]),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x ** 2, 2), [(1, 1, 3, 3)]),
    ("split unbind", lambda x: x.split(1, 1)[1] * x.unbind(0)[0].sum(), [(2, 3)]),
    ("index_select scatter", lambda x, s: x.index_select(0, dtorch.tensor([1, 1])).scatter(
        1, dtorch.tensor([[0], [2]]), s * s), [(2, 3), (2, 1)]),
    ("diagonal diag_embed", lambda x: (x.diagonal() ** 2).diag_embed(1), [(2, 3)]),
    ("sort topk", lambda x: x.sort(1).values * x.topk(2, 1).values.sum(), [(2, 3)]),
    ("scatter_reduce amax", lambda x, s: x.scatter_reduce(1, dtorch.tensor([[0, 0], [2, 1]]), s ** 2, "amax"),
     [(2, 3), (2, 2)]),
    ("group_norm", lambda x, w: F.group_norm(x, 2, w), [(1, 4, 2), (4,)]),
    ("attention", lambda q, k: F.scaled_dot_product_attention(q, k, k), [(1, 2, 2), (1, 3, 2)]),
    ("conv_transpose2d", lambda x, w: F.conv_transpose2d(x, w, stride=2) ** 2, [(1, 1, 2, 2), (1, 1, 2, 2)]),
    ("unfold fold", lambda x: F.fold(F.unfold(x, 2) ** 2, (3, 3), 2), [(1, 1, 3, 3)]),
    ("interpolate bilinear", lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear") ** 2, [(1, 1, 2, 2)]),
    ("interpolate bicubic", lambda x: F.interpolate(x, size=(3, 3), mode="bicubic") ** 2, [(1, 1, 2, 2)]),
    ("grid_sample reflection", lambda x, g: F.grid_sample(x, g * 2, padding_mode="reflection",
                                                          align_corners=False), [(1, 1, 2, 3), (1, 1, 2, 2)]),
    ("pad reflect", lambda x: F.pad(x, (2, 1), mode="reflect") ** 2, [(1, 1, 3)]),
    ("embedding", lambda w: F.embedding(dtorch.tensor([1, 0, 1]), w) ** 2, [(2, 3)]),
    ("max_pool adaptive_max", lambda x: F.max_pool2d(x, 2) ** 2 + F.adaptive_max_pool2d(x, 1) ** 3,
     [(1, 1, 2, 2)]),
    ("kl_div", lambda x, t: F.kl_div(x.log_softmax(1), t.softmax(1), reduction="batchmean"), [(2, 3), (2, 3)]),
    ("binary_cross_entropy", lambda x, t: F.binary_cross_entropy(x.sigmoid(), t.sigmoid()), [(2, 3), (2, 3)]),
    ("binary_cross_entropy_with_logits", lambda x, t: F.binary_cross_entropy_with_logits(x, t.sigmoid()),
     [(2, 3), (2, 3)]),
    ("smooth_l1 huber", lambda x, t: F.smooth_l1_loss(x ** 2, t, beta=0.5) + F.huber_loss(x, t, delta=0.7),
     [(2, 3), (2, 3)]),
    ("inv det solve", lambda a, b: dtorch.linalg.inv(a + 3 * dtorch.eye(2, dtype=a.dtype)).sum() * dtorch.linalg.det(
        a + 3 * dtorch.eye(2, dtype=a.dtype)) + dtorch.linalg.solve(a + 3 * dtorch.eye(2, dtype=a.dtype), b).sum(),
     [(2, 2), (2,)]),
    ("fft rfft irfft", lambda x: dtorch.fft.fft(x).abs() ** 2 + dtorch.fft.irfft(dtorch.fft.rfft(x ** 2), n=4),
     [(4,)]),
    ("lstm", lambda x: _lstm()(x)[0] ** 2, [(2, 1, 2)]),
    ("gru", lambda x: _gru()(x)[0] ** 2, [(2, 1, 2)]),
]


def _lstm():
    dtorch.manual_seed(0)
    return dtorch.nn.LSTM(2, 2).double()


def _gru():
    dtorch.manual_seed(0)
    return dtorch.nn.GRU(2, 2).double()


@pytest.mark.parametrize("name, fn, shapes", GRADGRAD_CASES, ids=[c[0] for c in GRADGRAD_CASES])
def test_gradcheck_and_gradgradcheck(name, fn, shapes):
    inputs = _inputs(*shapes)
    assert dtorch.autograd.gradcheck(fn, inputs)
    assert dtorch.autograd.gradgradcheck(fn, inputs)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class WrongSquare(dtorch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 2 * x.detach()  # right first derivative, but no second one

    x = _inputs((3,))[0]
    assert dtorch.autograd.gradcheck(WrongSquare.apply, (x,))
    assert not dtorch.autograd.gradgradcheck(WrongSquare.apply, (x,), raise_exception=False)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        dtorch.autograd.gradgradcheck(WrongSquare.apply, (x,))


def test_third_order_through_indexing_and_softmax():
    for library in (torch, dtorch):
        x = library.tensor([[0.3, -1.2, 0.5], [1.1, 0.2, -0.4]], dtype=library.float64, requires_grad=True)
        y = (x[:, 1:].softmax(1) * x[:, :2]).sum()
        (g1,) = library.autograd.grad(y, x, create_graph=True)
        (g2,) = library.autograd.grad((g1 ** 2).sum(), x, create_graph=True)
        (g3,) = library.autograd.grad(g2.sum(), x)
        if library is torch:
            expected = g3.numpy()
        else:
            np.testing.assert_allclose(g3.numpy(), expected, rtol=1e-9, atol=1e-12)


# ---- the programs: a WGAN-GP gradient penalty on a conv critic, a MAML inner step -------------------------------------


def _critic(library):
    library.manual_seed(0)
    nn = library.nn
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.LayerNorm([8, 2, 2]), nn.LeakyReLU(0.2),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 1),
    )


def _copy_weights(source, target):
    for theirs, ours in zip(source.parameters(), target.parameters()):
        ours.data.copy_(dtorch.from_numpy(theirs.detach().numpy().copy()))


def _wgan_gp_step(library, critic, real, fake, alpha):
    """One critic step of WGAN-GP: the penalty ``(|grad_x critic(x_hat)| - 1)^2`` on interpolates."""
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(interpolates)
    (gradients,) = library.autograd.grad(scores, interpolates, grad_outputs=library.ones_like(scores),
                                         create_graph=True, retain_graph=True)
    penalty = ((gradients.reshape(gradients.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
    loss = critic(fake).mean() - critic(real).mean() + 10 * penalty
    critic.zero_grad()
    loss.backward()
    return loss, [p.grad for p in critic.parameters()]


def test_wgan_gp_gradient_penalty_on_a_conv_critic_matches_torch():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((3, 1, 8, 8)), rng.standard_normal((3, 1, 8, 8))
    alpha = rng.uniform(size=(3, 1, 1, 1))
    theirs_critic, ours_critic = _critic(torch).double(), _critic(dtorch).double()
    _copy_weights(theirs_critic, ours_critic)
    theirs = _wgan_gp_step(torch, theirs_critic, *(torch.from_numpy(a) for a in (real, fake, alpha)))
    ours = _wgan_gp_step(dtorch, ours_critic, *(dtorch.from_numpy(a) for a in (real, fake, alpha)))
    np.testing.assert_allclose(ours[0].item(), theirs[0].item(), rtol=1e-9)
    for mine, expected in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(mine.numpy(), expected.numpy(), rtol=1e-7, atol=1e-10)


def _maml_meta_gradient(library, weights, tasks, inner_lr):
    """Meta-gradient of the query loss after one inner SGD step per task, differentiated through the step."""
    f = library.nn.functional
    w1, b1, w2, b2 = weights

    def model(params, x):
        return f.linear(f.relu(f.linear(x, params[0], params[1])), params[2], params[3])

    meta_loss = 0
    for support_x, support_y, query_x, query_y in tasks:
        inner_loss = f.cross_entropy(model(weights, support_x), support_y)
        grads = library.autograd.grad(inner_loss, weights, create_graph=True)
        adapted = [w - inner_lr * g for w, g in zip(weights, grads)]
        meta_loss = meta_loss + f.cross_entropy(model(adapted, query_x), query_y)
    return meta_loss, library.autograd.grad(meta_loss, weights)


def test_maml_inner_step_meta_gradient_matches_torch():
    rng = np.random.default_rng(1)
    shapes = [(6, 4), (6,), (3, 6), (3,)]
    arrays = [rng.standard_normal(s) * 0.5 for s in shapes]
    tasks = [(rng.standard_normal((5, 4)), rng.integers(0, 3, 5), rng.standard_normal((5, 4)), rng.integers(0, 3, 5))
             for _ in range(2)]
    results = []
    for library in (torch, dtorch):
        weights = [library.tensor(a, requires_grad=True) for a in arrays]
        lib_tasks = [tuple(library.tensor(a) for a in task) for task in tasks]
        results.append(_maml_meta_gradient(library, weights, lib_tasks, 0.4))
    (theirs_loss, theirs_grads), (ours_loss, ours_grads) = results
    np.testing.assert_allclose(ours_loss.item(), theirs_loss.item(), rtol=1e-9)
    for mine, expected in zip(ours_grads, theirs_grads):
        np.testing.assert_allclose(mine.numpy(), expected.numpy(), rtol=1e-7, atol=1e-10)


# ---- the fused recurrent layers (differentiated through a composition of the same recurrence) --------------------------


@pytest.mark.parametrize("make", [
    lambda nn: nn.RNN(3, 4, num_layers=2),
    lambda nn: nn.RNN(3, 4, nonlinearity="relu", bidirectional=True),
    lambda nn: nn.LSTM(3, 4, bidirectional=True),
    lambda nn: nn.LSTM(3, 5, proj_size=2),
    lambda nn: nn.GRU(3, 4, num_layers=2, bias=False),
], ids=["rnn", "rnn relu bidirectional", "lstm bidirectional", "lstm proj", "gru"])
def test_recurrent_layers_second_order_match_torch(make):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 2, 3))
    results = []
    for library in (torch, dtorch):
        library.manual_seed(0)
        layer = make(library.nn).double()
        if library is dtorch:
            for ours, theirs in zip(layer.parameters(), results[0][2]):
                ours.data.copy_(dtorch.from_numpy(theirs.copy()))
        inputs = library.tensor(x, requires_grad=True)
        output = layer(inputs)[0]
        (first,) = library.autograd.grad((output ** 2).sum(), inputs, create_graph=True)
        penalty = (first ** 2).sum() + (first * inputs).sum()
        grads = library.autograd.grad(penalty, [inputs] + list(layer.parameters()))
        results.append((first.detach().numpy(), [g.numpy() for g in grads],
                        [p.detach().numpy() for p in layer.parameters()]))
    (theirs_first, theirs_grads, _), (ours_first, ours_grads, _) = results
    np.testing.assert_allclose(ours_first, theirs_first, rtol=1e-9, atol=1e-12)
    for index, (mine, expected) in enumerate(zip(ours_grads, theirs_grads)):
        np.testing.assert_allclose(mine, expected, rtol=1e-8, atol=1e-11, err_msg=f"gradient {index}")


@pytest.mark.parametrize("op", [
    lambda x: x.softmax(1), lambda x: x.log_softmax(1), lambda x: F.layer_norm(x, (4,)),
    lambda x: F.batch_norm(x, None, None, training=True), lambda x: F.group_norm(x.reshape(3, 4, 1), 2),
    lambda x: F.cross_entropy(x, dtorch.tensor([0, 1, 3])), lambda x: F.mse_loss(x, dtorch.ones(3, 4)),
    lambda x: F.scaled_dot_product_attention(x, x, x),
], ids=["softmax", "log_softmax", "layer_norm", "batch_norm", "group_norm", "cross_entropy", "mse_loss", "attention"])
def test_double_backward_support_keeps_no_input_tensor_alive(op):
    # PyTorch keeps what these ops' plain backward reads; keeping the input Tensor too (for create_graph) would
    # hold, e.g., every attention score matrix of a model until backward
    import gc
    import weakref

    leaf = dtorch.randn(3, 4, requires_grad=True)
    x = leaf * 2
    out = op(x)
    alive = weakref.ref(x)
    del x
    gc.collect()
    assert alive() is None
    (g,) = dtorch.autograd.grad(out.sum() if out.dim() else out, leaf, create_graph=True)
    (g * g).sum().backward()
    assert leaf.grad is not None
