"""dtorch.nn.functional against torch.nn.functional: forward values and gradients on seeded random inputs.

One helper, ``check``: each case is a function ``f(F, *tensors)`` run once with ``F = dtorch.nn.functional`` and once
with ``F = torch.nn.functional`` on the same arrays; outputs and the gradients of every floating input (weights
included) must agree. The backward is seeded with the same random output gradient on both sides.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import dtorch
import dtorch.nn.functional as DF


def r(*shape, low=None, high=None, seed=None):
    """A float64 array: standard normal, or uniform in ``[low, high)``."""
    rng = np.random.default_rng(seed if seed is not None else hash(shape) % 2**32)
    if low is not None:
        return rng.uniform(low, high, size=shape)
    return rng.standard_normal(shape)


def ints(high, *shape, low=0, seed=1):
    return np.random.default_rng(seed).integers(low, high, size=shape).astype(np.int64)


class Const:
    """An input that never requires grad (running statistics, masks, targets)."""

    def __init__(self, array):
        self.array = np.asarray(array)


def _to_pair(spec, dtype):
    const = isinstance(spec, Const)
    array = spec.array if const else np.asarray(spec)
    if array.dtype.kind == "f":
        array = array.astype(dtype)
    needs_grad = not const and array.dtype.kind == "f"
    d = dtorch.tensor(array.copy(), requires_grad=needs_grad)
    t = torch.tensor(array.copy(), requires_grad=needs_grad)
    return d, t


def _flatten(out):
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def check(fn, *inputs, dtype=np.float32, atol=None, rtol=None, backward=True):
    """Compare ``fn(DF, ...)`` with ``fn(TF, ...)``: outputs, then input gradients for a random output gradient."""
    if atol is None:
        atol = 1e-5 if dtype == np.float32 else 1e-10
    if rtol is None:
        rtol = 1e-4 if dtype == np.float32 else 1e-8
    pairs = [_to_pair(spec, dtype) for spec in inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outs_d = _flatten(fn(DF, *[d for d, _ in pairs]))
        outs_t = _flatten(fn(TF, *[t for _, t in pairs]))
    assert len(outs_d) == len(outs_t)
    for od, ot in zip(outs_d, outs_t):
        assert tuple(od.shape) == tuple(ot.shape), (od.shape, ot.shape)
        expected = ot.detach().numpy()
        assert od._array.dtype == expected.dtype, (od._array.dtype, expected.dtype)
        np.testing.assert_allclose(od._array, expected, atol=atol, rtol=rtol, err_msg="forward")
    if not backward:
        return
    grads_d, grads_t = [], []
    for index, (od, ot) in enumerate(zip(outs_d, outs_t)):
        if ot.requires_grad:
            seed = r(*ot.shape, seed=100 + index).astype(dtype)
            grads_d.append((od, dtorch.tensor(seed)))
            grads_t.append((ot, torch.tensor(seed)))
    if not grads_t:
        return
    torch.autograd.backward([o for o, _ in grads_t], [g for _, g in grads_t])
    dtorch.autograd.backward([o for o, _ in grads_d], [g for _, g in grads_d])
    for position, (d, t) in enumerate(pairs):
        if t.requires_grad:
            assert (d.grad is None) == (t.grad is None), f"input {position}: grad presence differs"
            if t.grad is not None:
                np.testing.assert_allclose(d.grad._array, t.grad.numpy(), atol=atol * 10, rtol=rtol * 10,
                                           err_msg=f"gradient of input {position}")


# one line per case: (id, fn, inputs, options)
CASES = [
    # linear
    ("linear", lambda F, x, w, b: F.linear(x, w, b), (r(4, 5), r(3, 5), r(3)), {}),
    ("linear_nobias_3d", lambda F, x, w: F.linear(x, w), (r(2, 4, 5), r(3, 5)), {}),
    ("linear_1d_input", lambda F, x, w, b: F.linear(x, w, b), (r(5), r(3, 5), r(3)), {}),
    # conv2d
    ("conv2d", lambda F, x, w, b: F.conv2d(x, w, b), (r(2, 3, 7, 6), r(4, 3, 3, 3), r(4)), {}),
    ("conv2d_stride_pad", lambda F, x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
     (r(2, 3, 8, 7), r(5, 3, 3, 3), r(5)), {}),
    ("conv2d_stride_pair", lambda F, x, w: F.conv2d(x, w, None, (2, 1), (0, 2)), (r(1, 2, 9, 6), r(3, 2, 3, 2)), {}),
    ("conv2d_dilation", lambda F, x, w: F.conv2d(x, w, dilation=2, padding=2), (r(2, 2, 9, 9), r(3, 2, 3, 3)), {}),
    ("conv2d_groups", lambda F, x, w, b: F.conv2d(x, w, b, groups=2), (r(2, 4, 6, 6), r(6, 2, 3, 3), r(6)), {}),
    ("conv2d_depthwise", lambda F, x, w: F.conv2d(x, w, groups=4, padding=1), (r(2, 4, 5, 5), r(8, 1, 3, 3)), {}),
    ("conv2d_same_even", lambda F, x, w: F.conv2d(x, w, padding="same"), (r(1, 2, 6, 7), r(3, 2, 4, 2)), {}),
    ("conv2d_same_dil", lambda F, x, w: F.conv2d(x, w, padding="same", dilation=(2, 3)),
     (r(1, 2, 8, 9), r(2, 2, 3, 2)), {}),
    ("conv2d_valid", lambda F, x, w: F.conv2d(x, w, padding="valid"), (r(1, 2, 6, 6), r(2, 2, 3, 3)), {}),
    ("conv2d_unbatched", lambda F, x, w, b: F.conv2d(x, w, b, padding=1), (r(3, 5, 5), r(2, 3, 3, 3), r(2)), {}),
    ("conv2d_1x1", lambda F, x, w: F.conv2d(x, w), (r(2, 8, 4, 4), r(16, 8, 1, 1)), {}),
    ("conv2d_f64", lambda F, x, w, b: F.conv2d(x, w, b, stride=2, padding=1, dilation=2),
     (r(2, 3, 9, 8), r(4, 3, 3, 3), r(4)), {"dtype": np.float64}),
    # conv1d
    ("conv1d", lambda F, x, w, b: F.conv1d(x, w, b), (r(2, 3, 10), r(4, 3, 3), r(4)), {}),
    ("conv1d_options", lambda F, x, w: F.conv1d(x, w, stride=2, padding=2, dilation=2, groups=3),
     (r(2, 3, 11), r(6, 1, 3)), {}),
    ("conv1d_same", lambda F, x, w: F.conv1d(x, w, padding="same"), (r(2, 2, 9), r(3, 2, 4)), {}),
    ("conv1d_unbatched", lambda F, x, w: F.conv1d(x, w), (r(2, 9), r(3, 2, 4)), {}),
    # conv_transpose2d
    ("convT2d", lambda F, x, w, b: F.conv_transpose2d(x, w, b), (r(2, 3, 4, 5), r(3, 4, 3, 3), r(4)), {}),
    ("convT2d_stride_pad", lambda F, x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
     (r(2, 3, 4, 4), r(3, 2, 3, 3), r(2)), {}),
    ("convT2d_groups_dil", lambda F, x, w: F.conv_transpose2d(x, w, stride=(2, 1), groups=2, dilation=(1, 2)),
     (r(1, 4, 3, 4), r(4, 3, 2, 3)), {}),
    ("convT2d_unbatched", lambda F, x, w: F.conv_transpose2d(x, w, stride=2), (r(2, 3, 3), r(2, 2, 2, 2)), {}),
    ("convT1d", lambda F, x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1, dilation=2),
     (r(2, 4, 6), r(4, 3, 3), r(3)), {}),
    ("convT1d_groups", lambda F, x, w: F.conv_transpose1d(x, w, groups=2), (r(4, 5), r(4, 1, 2)), {}),
    ("bilinear", lambda F, a, b, w, c: F.bilinear(a, b, w, c), (r(3, 4), r(3, 5), r(2, 4, 5), r(2)), {}),
    ("unfold", lambda F, x: F.unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), (r(2, 3, 5, 6),), {}),
    ("unfold_unbatched", lambda F, x: F.unfold(x, 2), (r(2, 4, 4),), {}),
    ("fold", lambda F, x: F.fold(x, (5, 6), (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)), (r(2, 18, 12),), {}),
    ("fold_overlap", lambda F, x: F.fold(x, 4, 2), (r(1, 8, 9),), {}),
    # pooling
    ("max_pool2d", lambda F, x: F.max_pool2d(x, 2), (r(2, 3, 6, 6),), {}),
    ("max_pool2d_opts", lambda F, x: F.max_pool2d(x, 3, stride=2, padding=1), (r(2, 2, 7, 8),), {}),
    ("max_pool2d_indices", lambda F, x: F.max_pool2d(x, (3, 2), (2, 1), (1, 0), return_indices=True),
     (r(2, 2, 7, 5),), {}),
    ("max_pool2d_ceil", lambda F, x: F.max_pool2d(x, 3, 2, ceil_mode=True, return_indices=True), (r(1, 2, 8, 6),), {}),
    ("max_pool2d_ceil_pad", lambda F, x: F.max_pool2d(x, 2, 2, 1, ceil_mode=True), (r(1, 2, 5, 6),), {}),
    ("max_pool2d_dilation", lambda F, x: F.max_pool2d(x, 2, 1, dilation=2, return_indices=True), (r(1, 2, 6, 6),), {}),
    ("max_pool2d_unbatched", lambda F, x: F.max_pool2d(x, 2), (r(3, 4, 4),), {}),
    ("max_pool2d_ties", lambda F, x: F.max_pool2d(x, 3, 1, 1, return_indices=True), (np.round(r(2, 2, 6, 6)),), {}),
    ("max_pool2d_ties_grad", lambda F, x: F.max_pool2d(x, (2, 3), (1, 2)), (np.round(r(2, 2, 6, 7)),), {}),
    ("max_pool1d", lambda F, x: F.max_pool1d(x, 3, 2, 1, return_indices=True), (r(2, 3, 10),), {}),
    ("max_pool1d_ceil", lambda F, x: F.max_pool1d(x, 2, ceil_mode=True), (r(2, 9),), {}),
    ("avg_pool2d", lambda F, x: F.avg_pool2d(x, 2), (r(2, 3, 6, 6),), {}),
    ("avg_pool2d_pad", lambda F, x: F.avg_pool2d(x, 3, 2, 1), (r(2, 2, 7, 6),), {}),
    ("avg_pool2d_nopad_count", lambda F, x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (r(2, 2, 7, 6),), {}),
    ("avg_pool2d_ceil", lambda F, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), (r(1, 2, 8, 7),), {}),
    ("avg_pool2d_ceil_nocount", lambda F, x: F.avg_pool2d(x, 2, 2, 1, True, False), (r(1, 2, 6, 7),), {}),
    ("avg_pool2d_divisor", lambda F, x: F.avg_pool2d(x, (2, 3), divisor_override=4), (r(1, 2, 6, 6),), {}),
    ("avg_pool1d", lambda F, x: F.avg_pool1d(x, 3, 2, 1), (r(2, 3, 9),), {}),
    ("adaptive_avg_pool2d_1", lambda F, x: F.adaptive_avg_pool2d(x, 1), (r(2, 3, 5, 4),), {}),
    ("adaptive_avg_pool2d_div", lambda F, x: F.adaptive_avg_pool2d(x, (2, 3)), (r(2, 3, 6, 6),), {}),
    ("adaptive_avg_pool2d_odd", lambda F, x: F.adaptive_avg_pool2d(x, (3, 4)), (r(2, 2, 7, 5),), {}),
    ("adaptive_avg_pool2d_none", lambda F, x: F.adaptive_avg_pool2d(x, (None, 2)), (r(3, 5, 7),), {}),
    ("adaptive_avg_pool1d", lambda F, x: F.adaptive_avg_pool1d(x, 4), (r(2, 3, 10),), {}),
    ("adaptive_max_pool2d", lambda F, x: F.adaptive_max_pool2d(x, (3, 2), True), (r(2, 3, 7, 5),), {}),
    ("adaptive_max_pool2d_div", lambda F, x: F.adaptive_max_pool2d(x, 2, True), (r(2, 3, 6, 4),), {}),
    ("adaptive_max_pool2d_3d", lambda F, x: F.adaptive_max_pool2d(x, (None, 3)), (r(3, 4, 7),), {}),
    ("adaptive_max_pool1d", lambda F, x: F.adaptive_max_pool1d(x, 4, return_indices=True), (r(2, 3, 9),), {}),
    ("interp_nearest", lambda F, x: F.interpolate(x, scale_factor=2), (r(2, 3, 4, 5),), {}),
    ("interp_nearest_size", lambda F, x: F.interpolate(x, size=(7, 3)), (r(1, 2, 4, 5),), {}),
    ("interp_nearest_exact", lambda F, x: F.interpolate(x, size=(7, 3), mode="nearest-exact"), (r(1, 2, 4, 5),), {}),
    ("interp_nearest_1d_frac", lambda F, x: F.interpolate(x, scale_factor=1.7), (r(2, 3, 5),), {}),
    ("interp_linear", lambda F, x: F.interpolate(x, size=9, mode="linear"), (r(2, 3, 5),), {}),
    ("interp_bilinear", lambda F, x: F.interpolate(x, scale_factor=2, mode="bilinear"), (r(2, 3, 4, 5),), {}),
    ("interp_bilinear_down", lambda F, x: F.interpolate(x, size=(3, 2), mode="bilinear"), (r(1, 2, 7, 5),), {}),
    ("interp_bilinear_ac", lambda F, x: F.interpolate(x, size=(6, 9), mode="bilinear", align_corners=True),
     (r(1, 2, 4, 5),), {}),
    ("interp_bilinear_scale", lambda F, x: F.interpolate(x, scale_factor=(1.5, 2.5), mode="bilinear"),
     (r(1, 2, 4, 5),), {}),
    ("interp_trilinear", lambda F, x: F.interpolate(x, size=(3, 4, 5), mode="trilinear"), (r(1, 2, 2, 3, 3),), {}),
    ("interp_area", lambda F, x: F.interpolate(x, size=(3, 2), mode="area"), (r(1, 2, 7, 5),), {}),
    ("interp_bicubic", lambda F, x: F.interpolate(x, scale_factor=2, mode="bicubic"), (r(2, 3, 3, 4),), {}),
    ("interp_bicubic_down", lambda F, x: F.interpolate(x, size=(2, 3), mode="bicubic"), (r(1, 2, 5, 7),), {}),
    ("interp_bicubic_ac", lambda F, x: F.interpolate(x, size=(5, 7), mode="bicubic", align_corners=True),
     (r(2, 3, 3, 4),), {}),
    ("interp_bicubic_scale", lambda F, x: F.interpolate(x, scale_factor=(1.7, 0.6), mode="bicubic"),
     (r(1, 2, 5, 7),), {}),
    ("interp_bicubic_recompute", lambda F, x: F.interpolate(x, scale_factor=(1.7, 0.6), mode="bicubic",
                                                            recompute_scale_factor=True), (r(1, 2, 5, 7),), {}),
    ("grid_sample_reflection", lambda F, x, g: F.grid_sample(x, g, padding_mode="reflection", align_corners=False),
     (r(2, 3, 4, 5), r(2, 3, 6, 2, low=-3, high=3)), {}),
    ("grid_sample_reflection_ac", lambda F, x, g: F.grid_sample(x, g, padding_mode="reflection", align_corners=True),
     (r(2, 3, 4, 5), r(2, 3, 6, 2, low=-3, high=3)), {}),
    ("grid_sample_reflection_nearest", lambda F, x, g: F.grid_sample(x, g, mode="nearest", padding_mode="reflection",
                                                                     align_corners=False),
     (r(2, 3, 4, 5), Const(r(2, 3, 6, 2, low=-3, high=3))), {}),
    ("grid_sample_reflection_one_row", lambda F, x, g: F.grid_sample(x, g, padding_mode="reflection",
                                                                     align_corners=True),
     (r(2, 3, 1, 5), r(2, 3, 6, 2, low=-3, high=3)), {}),
    # normalisation
    ("batch_norm_train", lambda F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
     (r(6, 3, 4, 4), r(3), r(3)), {}),
    ("batch_norm_train_2d", lambda F, x, w, b: F.batch_norm(x, None, None, w, b, True, 0.1, 1e-3),
     (r(8, 5), r(5), r(5)), {}),
    ("batch_norm_eval", lambda F, x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=False),
     (r(4, 3, 5), Const(r(3)), Const(r(3, low=0.5, high=2)), r(3), r(3)), {}),
    ("batch_norm_noaffine", lambda F, x: F.batch_norm(x, None, None, training=True), (r(4, 3, 2, 2),), {}),
    ("batch_norm_f64", lambda F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
     (r(5, 2, 3), r(2), r(2)), {"dtype": np.float64}),
    ("layer_norm", lambda F, x, w, b: F.layer_norm(x, (6,), w, b), (r(4, 6), r(6), r(6)), {}),
    ("layer_norm_2d_shape", lambda F, x, w, b: F.layer_norm(x, (3, 4), w, b, 1e-3),
     (r(2, 5, 3, 4), r(3, 4), r(3, 4)), {}),
    ("layer_norm_noaffine", lambda F, x: F.layer_norm(x, [5]), (r(3, 2, 5),), {}),
    ("group_norm", lambda F, x, w, b: F.group_norm(x, 2, w, b), (r(3, 4, 5, 5), r(4), r(4)), {}),
    ("group_norm_3d", lambda F, x, w, b: F.group_norm(x, 3, w, b, 1e-3), (r(2, 6, 7), r(6), r(6)), {}),
    ("group_norm_noaffine", lambda F, x: F.group_norm(x, 1), (r(2, 4, 3),), {}),
    ("instance_norm", lambda F, x, w, b: F.instance_norm(x, weight=w, bias=b), (r(2, 3, 4, 5), r(3), r(3)), {}),
    ("instance_norm_eval", lambda F, x, m, v: F.instance_norm(x, m, v, use_input_stats=False),
     (r(2, 3, 6), Const(r(3)), Const(r(3, low=0.5, high=2))), {}),
    ("rms_norm", lambda F, x, w: F.rms_norm(x, (4,), w), (r(3, 4), r(4)), {}),
    ("rms_norm_eps", lambda F, x: F.rms_norm(x, [2, 3], eps=1e-3), (r(2, 2, 3),), {}),
    # embedding
    ("embedding", lambda F, i, w: F.embedding(i, w), (ints(7, 3, 4), r(7, 5)), {}),
    ("embedding_padding", lambda F, i, w: F.embedding(i, w, padding_idx=2), (ints(5, 4, 6), r(5, 3)), {}),
    ("embedding_padding_neg", lambda F, i, w: F.embedding(i, w, padding_idx=-1), (ints(5, 10), r(5, 3)), {}),
    # activations
    ("relu", lambda F, x: F.relu(x), (r(3, 4),), {}),
    ("relu6", lambda F, x: F.relu6(x * 4), (r(3, 4),), {}),
    ("hardtanh", lambda F, x: F.hardtanh(x, -0.5, 0.7), (r(3, 4),), {}),
    ("leaky_relu", lambda F, x: F.leaky_relu(x), (r(3, 4),), {}),
    ("leaky_relu_slope", lambda F, x: F.leaky_relu(x, 0.2), (r(3, 4),), {}),
    ("elu", lambda F, x: F.elu(x), (r(3, 4),), {}),
    ("elu_alpha", lambda F, x: F.elu(x, 0.5), (r(3, 4),), {}),
    ("selu", lambda F, x: F.selu(x), (r(3, 4),), {}),
    ("celu", lambda F, x: F.celu(x, 0.7), (r(3, 4),), {}),
    ("gelu", lambda F, x: F.gelu(x), (r(3, 4),), {"atol": 1e-6}),
    ("gelu_tanh", lambda F, x: F.gelu(x, approximate="tanh"), (r(3, 4),), {}),
    ("silu", lambda F, x: F.silu(x), (r(3, 4),), {}),
    ("mish", lambda F, x: F.mish(x), (r(3, 4),), {}),
    ("sigmoid", lambda F, x: F.sigmoid(x * 10), (r(3, 4),), {}),
    ("tanh", lambda F, x: F.tanh(x), (r(3, 4),), {}),
    ("softplus", lambda F, x: F.softplus(x), (r(3, 4),), {}),
    ("softplus_beta", lambda F, x: F.softplus(x * 10, beta=2, threshold=5), (r(3, 4),), {}),
    ("logsigmoid", lambda F, x: F.logsigmoid(x), (r(3, 4),), {}),
    ("hardsigmoid", lambda F, x: F.hardsigmoid(x * 4), (r(3, 4),), {}),
    ("hardswish", lambda F, x: F.hardswish(x * 4), (r(3, 4),), {}),
    ("softsign", lambda F, x: F.softsign(x), (r(3, 4),), {}),
    ("tanhshrink", lambda F, x: F.tanhshrink(x), (r(3, 4),), {}),
    ("threshold", lambda F, x: F.threshold(x, 0.1, -2.0), (r(3, 4),), {}),
    ("glu", lambda F, x: F.glu(x, 1), (r(3, 4),), {}),
    ("prelu_channels", lambda F, x, w: F.prelu(x, w), (r(2, 3, 4), r(3)), {}),
    ("prelu_single", lambda F, x, w: F.prelu(x, w), (r(2, 3), r(1)), {}),
    ("rrelu_eval", lambda F, x: F.rrelu(x, 0.1, 0.4), (r(3, 4),), {}),
    ("hardshrink", lambda F, x: F.hardshrink(x, 0.3), (r(3, 4),), {}),
    ("softshrink", lambda F, x: F.softshrink(x, 0.3), (r(3, 4),), {}),
    ("softmax", lambda F, x: F.softmax(x, dim=1), (r(3, 5),), {}),
    ("softmax_dim0", lambda F, x: F.softmax(x, 0), (r(3, 5, 2),), {}),
    ("softmax_large", lambda F, x: F.softmax(x * 1000, -1), (r(4, 6),), {}),
    ("softmax_implicit", lambda F, x: F.softmax(x), (r(2, 3, 4),), {}),
    ("softmax_dtype", lambda F, x: F.softmax(x, -1, dtype=torch.float64 if F is TF else dtorch.float64), (r(3, 4),),
     {"atol": 1e-6}),
    ("softmin", lambda F, x: F.softmin(x, dim=1), (r(3, 5),), {}),
    ("log_softmax", lambda F, x: F.log_softmax(x, dim=1), (r(3, 5),), {}),
    ("log_softmax_large", lambda F, x: F.log_softmax(x * 1000, dim=-1), (r(4, 6),), {"rtol": 1e-5}),
    ("log_softmax_4d", lambda F, x: F.log_softmax(x, 1), (r(2, 3, 2, 2),), {}),
    ("normalize", lambda F, x: F.normalize(x, dim=1), (r(3, 4),), {}),
    ("cosine_similarity", lambda F, a, b: F.cosine_similarity(a, b), (r(3, 4), r(3, 4, seed=5)), {}),
    # pad
    ("pad_constant", lambda F, x: F.pad(x, (1, 2)), (r(2, 3),), {}),
    ("pad_constant_value", lambda F, x: F.pad(x, (1, 0, 2, 1), value=3.5), (r(2, 3, 4),), {}),
    ("pad_constant_negative", lambda F, x: F.pad(x, (-1, 2, 0, -1)), (r(2, 3, 4),), {}),
    ("pad_reflect_1d", lambda F, x: F.pad(x, (2, 3), mode="reflect"), (r(2, 3, 5),), {}),
    ("pad_reflect_2d", lambda F, x: F.pad(x, (1, 2, 2, 1), mode="reflect"), (r(1, 2, 4, 5),), {}),
    ("pad_replicate", lambda F, x: F.pad(x, (2, 1, 0, 3), mode="replicate"), (r(1, 2, 4, 3),), {}),
    ("pad_circular", lambda F, x: F.pad(x, (1, 2), mode="circular"), (r(2, 3, 4),), {}),
    # attention
    ("sdpa", lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v),
     (r(2, 3, 4, 8), r(2, 3, 5, 8), r(2, 3, 5, 6)), {}),
    ("sdpa_causal", lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3),
     (r(2, 2, 5, 4), r(2, 2, 5, 4), r(2, 2, 5, 4)), {}),
    ("sdpa_bool_mask", lambda F, q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
     (r(2, 4, 8), r(2, 6, 8), r(2, 6, 3), Const(np.arange(24).reshape(4, 6) % 5 != 1)), {}),
    ("sdpa_fully_masked_row", lambda F, q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
     (r(1, 3, 4), r(1, 2, 4), r(1, 2, 4), Const([[True, True], [False, False], [True, False]])), {}),
    ("sdpa_float_mask", lambda F, q, k, v, m: F.scaled_dot_product_attention(q, k, v, m),
     (r(2, 4, 8), r(2, 6, 8), r(2, 6, 3), r(4, 6)), {}),
    ("sdpa_bool_mask_4d_causal", lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     (r(2, 2, 4, 3), r(2, 2, 6, 3), r(2, 2, 6, 5)), {}),
    ("sdpa_broadcast_batch", lambda F, q, k, v, m: F.scaled_dot_product_attention(q, k, v, m),
     (r(2, 3, 4, 8), r(1, 3, 6, 8), r(2, 1, 6, 3), Const(r(2, 1, 4, 6) > -1.0)), {}),
    ("sdpa_gqa", lambda F, q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
     (r(1, 4, 3, 8), r(1, 2, 5, 8), r(1, 2, 5, 8)), {}),
    # losses
    ("mse", lambda F, x, t: F.mse_loss(x, t), (r(3, 4), r(3, 4, seed=2)), {}),
    ("mse_sum", lambda F, x, t: F.mse_loss(x, t, reduction="sum"), (r(3, 4), r(3, 4, seed=2)), {}),
    ("mse_none", lambda F, x, t: F.mse_loss(x, t, reduction="none"), (r(3, 4), r(3, 4, seed=2)), {}),
    ("mse_broadcast", lambda F, x, t: F.mse_loss(x, t), (r(3, 4), r(4, seed=2)), {}),
    ("mse_weight", lambda F, x, t, w: F.mse_loss(x, t, weight=w),
     (r(3, 4), r(3, 4, seed=2), r(3, 4, low=0, high=1)), {}),
    ("mse_legacy", lambda F, x, t: F.mse_loss(x, t, size_average=False), (r(3, 4), r(3, 4, seed=2)), {}),
    ("l1", lambda F, x, t: F.l1_loss(x, t), (r(3, 4), r(3, 4, seed=2)), {}),
    ("l1_none", lambda F, x, t: F.l1_loss(x, t, reduction="none"), (r(3, 4), r(3, 4, seed=2)), {}),
    ("l1_weight", lambda F, x, t, w: F.l1_loss(x, t, weight=w, reduction="sum"),
     (r(3, 4), r(3, 4, seed=2), r(3, 4, low=0, high=1)), {}),
    ("smooth_l1", lambda F, x, t: F.smooth_l1_loss(x, t), (r(3, 4), r(3, 4, seed=2)), {}),
    ("smooth_l1_beta", lambda F, x, t: F.smooth_l1_loss(x, t, reduction="none", beta=0.5),
     (r(3, 4), r(3, 4, seed=2)), {}),
    ("smooth_l1_beta0", lambda F, x, t: F.smooth_l1_loss(x, t, reduction="sum", beta=0.0),
     (r(3, 4), r(3, 4, seed=2)), {}),
    ("huber", lambda F, x, t: F.huber_loss(x, t), (r(3, 4), r(3, 4, seed=2)), {}),
    ("huber_delta", lambda F, x, t: F.huber_loss(x, t, "none", 0.3), (r(3, 4), r(3, 4, seed=2)), {}),
    ("huber_weight", lambda F, x, t, w: F.huber_loss(x, t, delta=0.5, weight=w),
     (r(3, 4), r(3, 4, seed=2), r(3, 4, low=0, high=1)), {}),
    ("ce", lambda F, x, t: F.cross_entropy(x, t), (r(5, 4), Const(ints(4, 5))), {}),
    ("ce_sum", lambda F, x, t: F.cross_entropy(x, t, reduction="sum"), (r(5, 4), Const(ints(4, 5))), {}),
    ("ce_none", lambda F, x, t: F.cross_entropy(x, t, reduction="none"), (r(5, 4), Const(ints(4, 5))), {}),
    ("ce_weight", lambda F, x, t, w: F.cross_entropy(x, t, w),
     (r(6, 4), Const(ints(4, 6)), Const(r(4, low=0.2, high=2))), {}),
    ("ce_ignore", lambda F, x, t: F.cross_entropy(x, t, ignore_index=2), (r(6, 4), Const(ints(4, 6))), {}),
    ("ce_ignore_weight_none", lambda F, x, t, w: F.cross_entropy(x, t, w, ignore_index=1, reduction="none"),
     (r(6, 4), Const(ints(4, 6)), Const(r(4, low=0.2, high=2))), {}),
    ("ce_smoothing", lambda F, x, t: F.cross_entropy(x, t, label_smoothing=0.1), (r(6, 4), Const(ints(4, 6))), {}),
    ("ce_smoothing_weight_ignore", lambda F, x, t, w: F.cross_entropy(x, t, w, ignore_index=0, label_smoothing=0.2),
     (r(8, 5), Const(ints(5, 8)), Const(r(5, low=0.2, high=2))), {}),
    ("ce_smoothing_ignore", lambda F, x, t: F.cross_entropy(x, t, ignore_index=0, label_smoothing=0.3),
     (r(8, 5), Const(ints(5, 8))), {}),
    ("ce_smoothing_none", lambda F, x, t, w: F.cross_entropy(x, t, w, ignore_index=3, reduction="none",
                                                             label_smoothing=0.2),
     (r(8, 5), Const(ints(5, 8)), Const(r(5, low=0.2, high=2))), {}),
    ("ce_smoothing_sum", lambda F, x, t: F.cross_entropy(x, t, ignore_index=3, reduction="sum", label_smoothing=0.2),
     (r(8, 5), Const(ints(5, 8))), {}),
    ("ce_spatial", lambda F, x, t: F.cross_entropy(x, t), (r(2, 4, 3, 5), Const(ints(4, 2, 3, 5))), {}),
    ("ce_spatial_1d_none", lambda F, x, t: F.cross_entropy(x, t, reduction="none", ignore_index=1),
     (r(2, 4, 7), Const(ints(4, 2, 7))), {}),
    ("ce_unbatched", lambda F, x, t: F.cross_entropy(x, t), (r(5), Const(np.array(3))), {}),
    ("ce_probs", lambda F, x, t: F.cross_entropy(x, t), (r(5, 4), Const(r(5, 4, low=0, high=1))), {}),
    ("ce_probs_grad_target", lambda F, x, t: F.cross_entropy(x, F.softmax(t, -1)), (r(5, 4), r(5, 4, seed=9)), {}),
    ("ce_probs_weight_smooth", lambda F, x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.1),
     (r(5, 4), Const(r(5, 4, low=0, high=1)), Const(r(4, low=0.5, high=2))), {}),
    ("ce_probs_spatial_none", lambda F, x, t: F.cross_entropy(x, t, reduction="none"),
     (r(2, 3, 4), Const(r(2, 3, 4, low=0, high=1))), {}),
    ("ce_f64", lambda F, x, t: F.cross_entropy(x, t, label_smoothing=0.05), (r(6, 5), Const(ints(5, 6))),
     {"dtype": np.float64}),
    ("ce_all_ignored", lambda F, x, t: F.cross_entropy(x, t, ignore_index=0, label_smoothing=0.1),
     (r(3, 4), Const(np.zeros(3, np.int64))), {}),
    ("nll", lambda F, x, t: F.nll_loss(x, t), (r(5, 4), Const(ints(4, 5))), {}),
    ("nll_all_ignored", lambda F, x, t: F.nll_loss(x, t, ignore_index=1), (r(3, 4), Const(np.ones(3, np.int64))), {}),
    ("nll_weight_ignore", lambda F, x, t, w: F.nll_loss(x, t, w, ignore_index=1),
     (r(6, 4), Const(ints(4, 6)), Const(r(4, low=0.2, high=2))), {}),
    ("nll_none_spatial", lambda F, x, t: F.nll_loss(x, t, reduction="none"), (r(2, 4, 3), Const(ints(4, 2, 3))), {}),
    ("nll_sum", lambda F, x, t: F.nll_loss(x, t, reduction="sum"), (r(5, 4), Const(ints(4, 5))), {}),
    ("bce", lambda F, x, t: F.binary_cross_entropy(x, t),
     (r(3, 4, low=0.05, high=0.95), Const(r(3, 4, low=0, high=1))), {}),
    ("bce_weight_none", lambda F, x, t, w: F.binary_cross_entropy(x, t, w, reduction="none"),
     (r(3, 4, low=0.05, high=0.95), Const(r(3, 4, low=0, high=1)), Const(r(4, low=0, high=1))), {}),
    ("bce_edges", lambda F, x, t: F.binary_cross_entropy(x, t, reduction="none"),
     (Const([0.0, 1.0, 0.0, 1.0, 0.5]), Const([0.0, 1.0, 1.0, 0.0, 0.5])), {"backward": False}),
    ("bce_target_grad", lambda F, x, t: F.binary_cross_entropy(x, t, reduction="sum"),
     (r(3, 4, low=0.05, high=0.95), r(3, 4, low=0, high=1)), {}),
    ("bce_logits", lambda F, x, t: F.binary_cross_entropy_with_logits(x * 5, t),
     (r(3, 4), Const(r(3, 4, low=0, high=1))), {}),
    ("bce_logits_weight", lambda F, x, t, w: F.binary_cross_entropy_with_logits(x, t, w, reduction="sum"),
     (r(3, 4), r(3, 4, low=0, high=1), Const(r(3, 4, low=0, high=1))), {}),
    ("bce_logits_pos_weight",
     lambda F, x, t, p: F.binary_cross_entropy_with_logits(x, t, pos_weight=p, reduction="none"),
     (r(3, 4), r(3, 4, low=0, high=1), Const(r(4, low=0.5, high=3))), {}),
    ("bce_logits_both", lambda F, x, t, w, p: F.binary_cross_entropy_with_logits(x, t, w, pos_weight=p),
     (r(3, 4), Const(r(3, 4, low=0, high=1)), Const(r(4, low=0, high=1)), Const(r(4, low=0.5, high=3))), {}),
    ("kl_div", lambda F, x, t: F.kl_div(x, t, reduction="batchmean"),
     (r(3, 4), r(3, 4, low=0, high=1)), {}),
    ("kl_div_mean", lambda F, x, t: F.kl_div(x, t), (r(3, 4), Const(r(3, 4, low=0, high=1))), {}),
    ("kl_div_log_target", lambda F, x, t: F.kl_div(x, t, reduction="sum", log_target=True),
     (r(3, 4), r(3, 4, seed=4)), {}),
    ("kl_div_none", lambda F, x, t: F.kl_div(x, t, reduction="none"), (r(3, 4), Const(r(3, 4, low=0, high=1))), {}),
    ("poisson_nll", lambda F, x, t: F.poisson_nll_loss(x, t), (r(3, 4), Const(r(3, 4, low=0, high=4))), {}),
    ("poisson_nll_full", lambda F, x, t: F.poisson_nll_loss(x, t, log_input=False, full=True, reduction="none"),
     (r(3, 4, low=0.1, high=3), Const(r(3, 4, low=0, high=4))), {}),
    ("gaussian_nll", lambda F, x, t, v: F.gaussian_nll_loss(x, t, v),
     (r(3, 4), r(3, 4, seed=3), r(3, 4, low=0.1, high=2)), {}),
    ("gaussian_nll_hetero", lambda F, x, t, v: F.gaussian_nll_loss(x, t, v, full=True, reduction="sum"),
     (r(3, 4), r(3, 4, seed=3), r(3, 1, low=0.1, high=2)), {}),
    ("gaussian_nll_clamped", lambda F, x, t, v: F.gaussian_nll_loss(x, t, v, eps=0.5, reduction="none"),
     (r(3, 4), r(3, 4, seed=3), r(3, low=0.1, high=1)), {}),
    ("margin_ranking", lambda F, a, b, t: F.margin_ranking_loss(a, b, t, 0.3),
     (r(5), r(5, seed=2), Const(np.sign(r(5, seed=3)))), {}),
    ("soft_margin", lambda F, x, t: F.soft_margin_loss(x, t), (r(3, 4), Const(np.sign(r(3, 4, seed=3)))), {}),
    ("hinge_embedding", lambda F, x, t: F.hinge_embedding_loss(x, t, 0.5, reduction="sum"),
     (r(3, 4), Const(np.sign(r(3, 4, seed=3)))), {}),
    ("cosine_embedding", lambda F, a, b, t: F.cosine_embedding_loss(a, b, t, 0.1),
     (r(4, 5), r(4, 5, seed=2), Const(np.sign(r(4, seed=3)))), {}),
    ("triplet_margin", lambda F, a, p, n: F.triplet_margin_loss(a, p, n),
     (r(4, 5), r(4, 5, seed=2), r(4, 5, seed=3)), {}),
    ("triplet_margin_swap", lambda F, a, p, n: F.triplet_margin_loss(a, p, n, 0.5, 1, swap=True, reduction="none"),
     (r(4, 5), r(4, 5, seed=2), r(4, 5, seed=3)), {}),
    ("multilabel_soft_margin", lambda F, x, t, w: F.multilabel_soft_margin_loss(x, t, w),
     (r(3, 4), Const((r(3, 4, seed=3) > 0) * 1.0), Const(r(4, low=0.5, high=1))), {}),
    ("pairwise_distance", lambda F, a, b: F.pairwise_distance(a, b, keepdim=True), (r(3, 4), r(3, 4, seed=2)), {}),
    ("one_hot", lambda F, i: F.one_hot(i, 5), (ints(5, 3, 2),), {}),
    ("one_hot_infer", lambda F, i: F.one_hot(i), (ints(4, 6),), {}),
]


@pytest.mark.parametrize("fn, inputs, options", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_against_torch(fn, inputs, options):
    check(fn, *inputs, **options)


# ---- stateful and random ---------------------------------------------------------------------------------------


def test_batch_norm_running_stats_updated_in_place():
    x = r(6, 3, 2, 2)
    rm_d, rv_d = dtorch.zeros(3), dtorch.ones(3)
    rm_t, rv_t = torch.zeros(3), torch.ones(3)
    mean_array = rm_d._array
    for momentum in (0.1, 0.5):
        DF.batch_norm(dtorch.tensor(x, dtype=dtorch.float32), rm_d, rv_d, training=True, momentum=momentum)
        TF.batch_norm(torch.tensor(x, dtype=torch.float32), rm_t, rv_t, training=True, momentum=momentum)
    assert rm_d._array is mean_array
    np.testing.assert_allclose(rm_d._array, rm_t.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv_d._array, rv_t.numpy(), rtol=1e-5, atol=1e-6)
    before = rm_d._array.copy()
    DF.batch_norm(dtorch.tensor(x, dtype=dtorch.float32), rm_d, rv_d, training=False)
    np.testing.assert_array_equal(rm_d._array, before)


def test_instance_norm_running_stats():
    x = r(4, 3, 5)
    rm_d, rv_d = dtorch.zeros(3), dtorch.ones(3)
    rm_t, rv_t = torch.zeros(3), torch.ones(3)
    DF.instance_norm(dtorch.tensor(x, dtype=dtorch.float32), rm_d, rv_d, momentum=0.3)
    TF.instance_norm(torch.tensor(x, dtype=torch.float32), rm_t, rv_t, momentum=0.3)
    np.testing.assert_allclose(rm_d._array, rm_t.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv_d._array, rv_t.numpy(), rtol=1e-5, atol=1e-6)


def test_batch_norm_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        DF.batch_norm(dtorch.randn(1, 3), None, None, training=True)


def test_max_pool_propagates_nan_like_torch():
    x = r(1, 1, 4, 4)
    x[0, 0, 1, 2] = np.nan
    out_d, index_d = DF.max_pool2d(dtorch.tensor(x, requires_grad=True), 2, return_indices=True)
    out_t, index_t = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(out_d._array, out_t.numpy())
    np.testing.assert_array_equal(index_d._array, index_t.numpy())


def test_inputs_modified_in_place_after_conv_or_pool_are_an_error():
    for f in (lambda x: DF.conv2d(x, dtorch.ones(1, 1, 2, 2)), lambda x: DF.max_pool2d(x, 2)):
        x = dtorch.randn(1, 1, 4, 4, requires_grad=True) * 1
        y = f(x)
        x.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_dropout_train_eval_and_seed():
    x = dtorch.ones(200, 50, requires_grad=True)
    assert DF.dropout(x, 0.3, training=False) is x
    dtorch.manual_seed(7)
    y = DF.dropout(x, 0.3)
    dtorch.manual_seed(7)
    y2 = DF.dropout(x, 0.3)
    np.testing.assert_array_equal(y._array, y2._array)
    values = set(np.unique(y._array).tolist())
    assert values <= {0.0, np.float32(1 / 0.7)}
    assert abs((y._array == 0).mean() - 0.3) < 0.02
    y.sum().backward()
    np.testing.assert_array_equal(x.grad._array, y._array)
    assert float(DF.dropout(x, 1.0).sum()) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        DF.dropout(x, 1.5)


def test_dropout2d_zeroes_whole_channels():
    dtorch.manual_seed(0)
    y = DF.dropout2d(dtorch.ones(8, 16, 3, 3), 0.5)
    per_channel = y._array.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))


def test_rrelu_training_slopes_in_range():
    dtorch.manual_seed(0)
    x = -dtorch.ones(1000)
    y = DF.rrelu(x, 0.1, 0.3, training=True)
    slopes = -y._array
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03


def test_dropout3d_zeroes_whole_channels():
    dtorch.manual_seed(0)
    y = DF.dropout3d(dtorch.ones(4, 8, 2, 2, 2), 0.5)
    per_channel = y._array.reshape(4, 8, 8)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))


def test_dropout_inplace():
    x = dtorch.ones(10, 10)
    y = DF.dropout(x, 0.5, inplace=True)
    assert y is x and set(np.unique(x._array).tolist()) <= {0.0, 2.0}


def test_sdpa_dropout_matches_composition_with_the_same_mask():
    q, k, v = (dtorch.tensor(r(2, 3, 5, 4, seed=s), dtype=dtorch.float64, requires_grad=True) for s in (1, 2, 3))
    dtorch.manual_seed(1)
    out = DF.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
    out.sum().backward()
    fused = [t.grad._array.copy() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    dtorch.manual_seed(1)
    mask = DF.dropout(dtorch.ones(2, 3, 5, 5, dtype=dtorch.float64), 0.4)
    weights = DF.softmax(dtorch.matmul(q, k.transpose(-2, -1)) / 2.0, dim=-1)
    expected = dtorch.matmul(weights * mask, v)
    np.testing.assert_allclose(out._array, expected._array, rtol=1e-12)
    expected.sum().backward()
    for mine, reference in zip(fused, (q.grad._array, k.grad._array, v.grad._array)):
        np.testing.assert_allclose(mine, reference, rtol=1e-10, atol=1e-12)


def test_embedding_max_norm_renormalises_in_place():
    w = r(5, 3) * 3
    d_w, t_w = dtorch.tensor(w, dtype=dtorch.float32), torch.tensor(w, dtype=torch.float32)
    index = ints(5, 4)
    out_d = DF.embedding(dtorch.tensor(index), d_w, max_norm=1.0)
    out_t = TF.embedding(torch.tensor(index), t_w, max_norm=1.0)
    np.testing.assert_allclose(out_d._array, out_t.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_w._array, t_w.numpy(), rtol=1e-5, atol=1e-6)


def test_inplace_activations():
    for name, args in (("relu", ()), ("leaky_relu", (0.1,)), ("elu", ()), ("hardtanh", ()), ("silu", ())):
        x = dtorch.tensor(r(3, 4), dtype=dtorch.float32)
        expected = getattr(TF, name)(torch.tensor(x._array), *args)
        y = getattr(DF, name)(x, *args, inplace=True)
        assert y is x
        np.testing.assert_allclose(x._array, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_inplace_activation_on_a_non_leaf_backpropagates():
    grads = []
    for lib, F in ((dtorch, DF), (torch, TF)):
        a = lib.tensor(r(3, 4), requires_grad=True)
        h = a * 2
        F.elu(h, 0.5, inplace=True)
        g = h * 3
        F.leaky_relu(g, 0.1, inplace=True)
        (h * g).sum().backward()
        grads.append(np.asarray(a.grad._array if lib is dtorch else a.grad.numpy()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-10)


def test_softmax_implicit_dim_warns():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        DF.softmax(dtorch.randn(2, 3))


def test_tensor_softmax_method_and_top_level_share_one_path():
    # Tensor.softmax, dtorch.softmax (dtype third, positionally) and nn.functional.softmax run one function
    x = dtorch.randn(3, 4)
    t = torch.tensor(x._array)
    assert dtorch.Tensor.softmax is dtorch.softmax is dtorch.functional.softmax
    np.testing.assert_allclose(x.softmax(1)._array, t.softmax(1).numpy(), rtol=1e-5)
    out = dtorch.log_softmax(x, -1, dtorch.float64)
    assert out.dtype == dtorch.float64
    np.testing.assert_allclose(out._array, torch.log_softmax(t, -1, torch.float64).numpy(), rtol=1e-6)
    np.testing.assert_allclose(DF.softmax(x, dim=0)._array, TF.softmax(t, dim=0).numpy(), rtol=1e-5)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        dtorch.softmax(dtorch.ones(2, dtype=dtorch.int64), 0)


def test_double_backward_through_linear_and_activations():
    results = []
    a, w, b = r(4, 3), r(5, 3, seed=1), r(5, seed=2)
    for lib, F in ((dtorch, DF), (torch, TF)):
        x, W, B = (lib.tensor(v, requires_grad=True) for v in (a, w, b))
        y = F.elu(F.leaky_relu(F.linear(x, W, B), 0.1))
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (g * g).sum().backward()
        results.append([np.asarray(t.grad._array if lib is dtorch else t.grad.numpy()) for t in (x, W, B)])
    for mine, theirs in zip(*results):
        np.testing.assert_allclose(mine, theirs, rtol=1e-8, atol=1e-10)


def test_fused_ops_are_recordable():
    x = dtorch.randn(2, 3, 6, 6, requires_grad=True)
    w = dtorch.randn(4, 3, 3, 3, requires_grad=True)
    y = DF.conv2d(x, w, stride=2, padding=1)
    node = y.grad_fn
    replay = type(node)(**node.attrs).forward(x._array, w._array, None)
    np.testing.assert_array_equal(replay, y._array)
    loss = DF.cross_entropy(dtorch.randn(4, 5, requires_grad=True), dtorch.tensor([0, 1, 2, 3]))
    assert set(loss.grad_fn.attrs) == {"axis", "probabilities", "ignore_index", "reduction", "label_smoothing"}


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return False


def test_every_recorded_attr_is_plain_data():
    for name, fn, inputs, _ in CASES:
        pairs = [_to_pair(spec, np.float32) for spec in inputs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = _flatten(fn(DF, *[d for d, _ in pairs]))
        for out in outs:
            node = out.grad_fn
            if node is not None:
                assert _plain(tuple(node.attrs.values())), (name, type(node).__name__, node.attrs)


# ---- gradcheck in float64 on tiny shapes --------------------------------------------------------------------------


def _leaf(*shape, seed=0, low=None, high=None):
    return dtorch.tensor(r(*shape, seed=seed, low=low, high=high), dtype=dtorch.float64, requires_grad=True)


GRADCHECKS = [
    ("conv2d", lambda x, w, b: DF.conv2d(x, w, b, stride=2, padding=1, dilation=1, groups=2),
     lambda: (_leaf(1, 2, 4, 4), _leaf(2, 1, 2, 3, seed=1), _leaf(2, seed=2))),
    ("conv1d_same", lambda x, w: DF.conv1d(x, w, padding="same", dilation=2),
     lambda: (_leaf(1, 2, 5), _leaf(2, 2, 2, seed=1))),
    ("conv_transpose2d", lambda x, w, b: DF.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
     lambda: (_leaf(1, 2, 2, 3), _leaf(2, 1, 3, 2, seed=1), _leaf(1, seed=2))),
    ("max_pool2d", lambda x: DF.max_pool2d(x, 2, 1, 1, ceil_mode=True), lambda: (_leaf(1, 1, 3, 4),)),
    ("avg_pool2d", lambda x: DF.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
     lambda: (_leaf(1, 1, 4, 5),)),
    ("adaptive_avg_pool2d", lambda x: DF.adaptive_avg_pool2d(x, (2, 3)), lambda: (_leaf(1, 1, 3, 4),)),
    ("adaptive_max_pool2d", lambda x: DF.adaptive_max_pool2d(x, (2, 3)), lambda: (_leaf(1, 1, 3, 4),)),
    ("batch_norm", lambda x, w, b: DF.batch_norm(x, None, None, w, b, training=True),
     lambda: (_leaf(3, 2, 2), _leaf(2, seed=1), _leaf(2, seed=2))),
    ("layer_norm", lambda x, w, b: DF.layer_norm(x, (2, 3), w, b),
     lambda: (_leaf(2, 2, 3), _leaf(2, 3, seed=1), _leaf(2, 3, seed=2))),
    ("group_norm", lambda x, w, b: DF.group_norm(x, 2, w, b),
     lambda: (_leaf(2, 4, 2), _leaf(4, seed=1), _leaf(4, seed=2))),
    ("cross_entropy", lambda x: DF.cross_entropy(x, dtorch.tensor([[0, 2], [1, 0]]), weight=dtorch.tensor(
        [1.0, 2.0, 0.5], dtype=dtorch.float64), label_smoothing=0.2, ignore_index=1), lambda: (_leaf(2, 3, 2),)),
    ("cross_entropy_probs", lambda x, t: DF.cross_entropy(x, t, label_smoothing=0.1),
     lambda: (_leaf(3, 4), _leaf(3, 4, seed=1, low=0, high=1))),
    ("log_softmax", lambda x: DF.log_softmax(x, dim=0), lambda: (_leaf(3, 2),)),
    ("softmax", lambda x: DF.softmax(x, dim=-1), lambda: (_leaf(2, 3),)),
    ("pad_reflect", lambda x: DF.pad(x, (2, 1, 1, 1), mode="reflect"), lambda: (_leaf(1, 3, 3),)),
    ("sdpa_mask", lambda q, k, v, m: DF.scaled_dot_product_attention(q, k, v, attn_mask=m),
     lambda: (_leaf(1, 2, 3), _leaf(1, 3, 3, seed=1), _leaf(1, 3, 2, seed=2), _leaf(2, 3, seed=3))),
    ("interpolate_bilinear", lambda x: DF.interpolate(x, size=(3, 5), mode="bilinear"), lambda: (_leaf(1, 1, 2, 3),)),
    ("unfold", lambda x: DF.unfold(x, 2, padding=1, stride=2), lambda: (_leaf(1, 2, 3, 3),)),
    ("embedding", lambda w: DF.embedding(dtorch.tensor([[0, 2], [2, 1]]), w), lambda: (_leaf(3, 2),)),
]


@pytest.mark.parametrize("fn, make", [g[1:] for g in GRADCHECKS], ids=[g[0] for g in GRADCHECKS])
def test_gradcheck(fn, make):
    assert dtorch.autograd.gradcheck(fn, make(), eps=1e-6, atol=1e-6, rtol=1e-4)


# ---- errors: wrong rank or channels name the shapes ---------------------------------------------------------------

ERRORS = [
    ("conv2d_rank", lambda: DF.conv2d(dtorch.randn(3, 4), dtorch.randn(2, 3, 1, 1)), r"\[3, 4\]"),
    ("conv2d_channels", lambda: DF.conv2d(dtorch.randn(1, 4, 5, 5), dtorch.randn(2, 3, 3, 3)),
     r"weight of size \[2, 3, 3, 3\].*input\[1, 4, 5, 5\].*3 channels, but got 4"),
    ("conv2d_groups", lambda: DF.conv2d(dtorch.randn(1, 4, 5, 5), dtorch.randn(3, 2, 3, 3), groups=2),
     r"\[3, 2, 3, 3\]"),
    ("conv2d_kernel_too_big", lambda: DF.conv2d(dtorch.randn(1, 1, 2, 2), dtorch.randn(1, 1, 3, 3)), r"Kernel size"),
    ("conv1d_rank", lambda: DF.conv1d(dtorch.randn(1, 2, 3, 4), dtorch.randn(2, 2, 3)), r"\[1, 2, 3, 4\]"),
    ("conv1d_channels", lambda: DF.conv1d(dtorch.randn(1, 5, 8), dtorch.randn(2, 2, 3)), r"input\[1, 5, 8\]"),
    ("conv_transpose2d_channels", lambda: DF.conv_transpose2d(dtorch.randn(1, 3, 4, 4), dtorch.randn(2, 2, 3, 3)),
     r"input\[1, 3, 4, 4\]"),
    ("max_pool2d_rank", lambda: DF.max_pool2d(dtorch.randn(4, 4), 2), r"\[4, 4\]"),
    ("avg_pool2d_rank", lambda: DF.avg_pool2d(dtorch.randn(1, 1, 1, 4, 4), 2), r"\[1, 1, 1, 4, 4\]"),
    ("batch_norm_channels", lambda: DF.batch_norm(dtorch.randn(2, 3), dtorch.zeros(4), dtorch.ones(4)), r"3 elements"),
    ("layer_norm_shape", lambda: DF.layer_norm(dtorch.randn(3, 4), (5,)), r"\[3, 4\]"),
    ("group_norm_groups", lambda: DF.group_norm(dtorch.randn(2, 6, 4), 4), r"\[2, 6, 4\]"),
    ("linear_shapes", lambda: DF.linear(dtorch.randn(2, 3), dtorch.randn(4, 5)), r"2x3 and 5x4"),
    ("cross_entropy_target", lambda: DF.cross_entropy(dtorch.randn(2, 3, 4), dtorch.tensor([[0, 1, 2, 0, 1]] * 2)),
     r"\[2, 4\].*\[2, 5\]"),
]


@pytest.mark.parametrize("call, pattern", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_shapes(call, pattern):
    with pytest.raises(RuntimeError, match=pattern):
        call()


def test_value_errors_like_torch():
    with pytest.raises(ValueError):
        DF.mse_loss(dtorch.randn(2), dtorch.randn(2), reduction="avg")
    with pytest.raises(ValueError):
        DF.binary_cross_entropy(dtorch.rand(2, 1), dtorch.rand(2))
    with pytest.raises(ValueError):
        DF.conv2d(dtorch.randn(1, 1, 4, 4), dtorch.randn(1, 1, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="batch_size"):
        DF.cross_entropy(dtorch.randn(2, 3), dtorch.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'pos_weight'"):
        DF.binary_cross_entropy_with_logits(dtorch.randn(2), dtorch.rand(2),
                                            pos_weight=dtorch.ones(2, requires_grad=True))
    with pytest.raises(IndexError):
        DF.cross_entropy(dtorch.randn(2, 3), dtorch.tensor([0, 3]))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        DF.binary_cross_entropy(dtorch.tensor([1.5]), dtorch.tensor([1.0]))


# ---- class-target losses reject what torch rejects, with torch's error type and message ----------------------------


def _class_loss_cases():
    x, x4 = r(3, 4, seed=5), r(2, 3, 4, 5, seed=6)

    def both(fn, input, target, **kwargs):
        return lambda lib: fn(lib)(lib.tensor(input), lib.tensor(target),
                                   **{k: lib.tensor(v) for k, v in kwargs.items() if k == "weight"},
                                   **{k: v for k, v in kwargs.items() if k != "weight"})

    ce = lambda lib: lib.nn.functional.cross_entropy  # noqa: E731
    nll = lambda lib: lib.nn.functional.nll_loss  # noqa: E731
    ce_module = lambda lib: lib.nn.CrossEntropyLoss()  # noqa: E731
    nll_module = lambda lib: lib.nn.NLLLoss()  # noqa: E731
    cases = []
    for dtype in (np.int32, np.int16, np.int8, np.float32, np.float64, np.bool_):
        target = np.array([0, 1, 1]).astype(dtype)
        for name, fn in (("ce", ce), ("nll", nll), ("CrossEntropyLoss", ce_module), ("NLLLoss", nll_module)):
            cases.append((f"{name}_{np.dtype(dtype).name}", both(fn, x, target)))
    return cases + [
        ("ce_int32_4d", both(ce, x4, np.zeros((2, 4, 5), np.int32))),
        ("ce_int32_unbatched", both(ce, x[0], np.array(1, np.int32))),
        ("ce_int32_smoothing", both(ce, x, np.array([0, 1, 1], np.int32), label_smoothing=0.2)),
        ("ce_int32_before_weight", both(ce, x, np.array([0, 1, 2], np.int32), weight=np.ones(5, np.float32))),
        ("ce_int32_before_bounds", both(ce, x, np.array([0, 1, 9], np.int32))),
        ("ce_int32_batch_first", both(ce, x, np.array([0, 1], np.int32))),
        ("ce_float_wrong_shape", both(ce, x, r(3, 5, seed=1).astype(np.float32))),
        ("ce_float_class_shape", both(ce, x, np.array([0.0, 1.0, 1.0], np.float32))),
        ("ce_long_probabilities", both(ce, x, np.zeros((3, 4), np.int64))),
        ("ce_uint8_probabilities", both(ce, x, np.zeros((3, 4), np.uint8))),
        ("ce_probabilities_weight", both(ce, x, r(3, 4, seed=1).astype(np.float32), weight=np.ones(3, np.float32))),
        ("nll_float_multi_target", both(nll, x, r(3, 4, seed=1).astype(np.float32))),
        ("nll_3d_target_size", both(nll, r(2, 3, 4), np.zeros((2, 5), np.int64))),
        ("nll_unbatched_target_size", both(nll, r(3), np.zeros(2, np.int64))),
        ("ce_long_input", both(ce, np.ones((2, 3), np.int64), np.array([0, 1]))),
    ]


@pytest.mark.parametrize("name, call", _class_loss_cases(), ids=[c[0] for c in _class_loss_cases()])
def test_class_loss_target_errors_match_torch(name, call):
    with pytest.raises(Exception) as expected:
        call(torch)
    with pytest.raises(Exception) as actual:
        call(dtorch)
    assert type(actual.value) is type(expected.value), (actual.value, expected.value)
    if "kernel" not in str(expected.value):  # the kernel names in torch's not-implemented errors are its own
        assert str(actual.value) == str(expected.value)


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_class_loss_accepts_uint8_targets_like_torch(fn):
    check(lambda F, x, t: getattr(F, fn)(F.log_softmax(x, 1), t), r(3, 4), Const(np.array([0, 3, 1], np.uint8)))


# ---- CTC loss ---------------------------------------------------------------------------------------------------------


def _ctc_both(logits, targets, input_lengths, target_lengths, upstream=None, leaf_log_probs=False, **kwargs):
    """ctc_loss (and nn.CTCLoss) with both libraries; compares the losses and the gradients of the logits."""
    results = []
    for library in (torch, dtorch):
        if leaf_log_probs:
            values = library.tensor(logits).log_softmax(-1).detach().requires_grad_()
            log_probs = leaf = values
        else:
            leaf = library.tensor(logits, requires_grad=True)
            log_probs = leaf.log_softmax(-1)
        target = library.tensor(targets)
        lengths = [library.tensor(v) if isinstance(v, np.ndarray) else v for v in (input_lengths, target_lengths)]
        loss = library.nn.functional.ctc_loss(log_probs, target, *lengths, **kwargs)
        module_loss = library.nn.CTCLoss(**kwargs)(log_probs, target, *lengths)
        grad = None if upstream is None else library.tensor(upstream)
        loss.backward(grad)
        results.append((loss.detach().numpy(), module_loss.detach().numpy(), leaf.grad.numpy()))
    (theirs_loss, theirs_module, theirs_grad), (ours_loss, ours_module, ours_grad) = results
    np.testing.assert_allclose(ours_loss, theirs_loss, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_module, theirs_module, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours_grad, theirs_grad, rtol=1e-9, atol=1e-12)


CTC_TARGETS = np.array([[1, 2, 2], [3, 1, 0], [4, 0, 0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ctc_loss_padded_targets(reduction):
    logits = r(7, 3, 5, seed=11)
    upstream = np.array([1.0, -0.5, 2.0]) if reduction == "none" else None
    _ctc_both(logits, CTC_TARGETS, (7, 6, 4), (3, 2, 1), upstream, reduction=reduction)


def test_ctc_loss_concatenated_targets_tensor_lengths_and_blank():
    logits = r(6, 2, 4, seed=12)
    _ctc_both(logits, np.array([1, 1, 2, 0, 2]), np.array([6, 5]), np.array([3, 2]), blank=3)


def test_ctc_loss_gradient_with_leaf_log_probs_matches_torch():
    _ctc_both(r(5, 3, 5, seed=13), CTC_TARGETS, (5, 5, 5), (3, 2, 1), leaf_log_probs=True)


def test_ctc_loss_unbatched_and_repeats_need_blanks():
    _ctc_both(r(6, 4, seed=14), np.array([1, 1, 3]), (6,), (3,), reduction="none")
    _ctc_both(r(6, 4, seed=14), np.array([1, 1, 3]), np.array(6), np.array(3))


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc_loss_impossible_alignment(zero_infinity):
    # 3 frames cannot hold the 4 labels of sample 0 (two repeats need blanks between): an infinite loss
    _ctc_both(r(3, 2, 4, seed=15), np.array([[1, 2, 1, 1], [1, 1, 0, 0]]), (3, 3), (4, 2), reduction="sum",
              zero_infinity=zero_infinity)


def test_ctc_loss_errors():
    lp = dtorch.randn(4, 2, 3).log_softmax(2)
    with pytest.raises(RuntimeError, match="Expected input_lengths to have value at most 4"):
        DF.ctc_loss(lp, dtorch.tensor([[1], [2]]), (5, 4), (1, 1))
    with pytest.raises(RuntimeError, match="blank must be in label range"):
        DF.ctc_loss(lp, dtorch.tensor([[1], [2]]), (4, 4), (1, 1), blank=3)
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        DF.ctc_loss(lp, dtorch.tensor([[1], [2]]), (4, 4), (1, 1), reduction="avg")


# ---- the less common ops (pooling with indices, unpooling, bags, grids, margin losses, ...) ---------------------

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


LESS_COMMON_CASES = [
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


@pytest.mark.parametrize("fn, inputs, options", [c[1:] for c in LESS_COMMON_CASES],
                         ids=[c[0] for c in LESS_COMMON_CASES])
def test_less_common_ops_against_torch(fn, inputs, options):
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


# ---- an op's output changed in place (an in-place ReLU after pooling or normalisation): PyTorch's gradients, or
# PyTorch's error where PyTorch raises; never silently wrong gradients from a buffer the op kept for backward --------

F_OPS = {
    "max_pool2d": lambda lib, t: lib.nn.functional.max_pool2d(t, 2),
    "batch_norm no affine": lambda lib, t: lib.nn.functional.batch_norm(t, None, None, training=True),
    "group_norm no affine": lambda lib, t: lib.nn.functional.group_norm(t, 1),
    "layer_norm no affine": lambda lib, t: lib.nn.functional.layer_norm(t, (4, 4)),
    "instance-like group_norm": lambda lib, t: lib.nn.functional.group_norm(t, 2),
}


def _input():
    return np.random.default_rng(3).standard_normal((2, 2, 4, 4)).astype(np.float32) - 0.5


@pytest.mark.parametrize("name", list(F_OPS))
@pytest.mark.parametrize("change", ["relu_", "add_"])
def test_output_changed_in_place_keeps_torch_gradients(name, change):
    grads = []
    for lib in (dtorch, torch):
        x = lib.tensor(_input(), requires_grad=True)
        y = F_OPS[name](lib, x * 1)
        if change == "relu_":
            lib.nn.functional.relu(y, inplace=True)
        else:
            y.add_(3.0)
        weights = lib.arange(y.numel(), dtype=lib.float32).reshape(y.shape) / y.numel()
        (y * weights).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["softmax", "exp", "sigmoid"])
def test_saved_output_changed_in_place_raises_like_torch(name):
    for lib in (dtorch, torch):
        x = lib.tensor(_input(), requires_grad=True)
        y = lib.softmax(x * 1, -1) if name == "softmax" else getattr(x * 1, name)()
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


@pytest.mark.parametrize("kwargs", [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.1}, {"ignore_index": 2},
    {"weight": np.array([0.5, 1.0, 2.0, 1.5])},
], ids=["dense mean", "dense sum", "dense none", "smoothing", "ignore_index", "class weights"])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5), (300, 200)], ids=["2-d", "class axis not last", "blocked rows"])
def test_cross_entropy_of_non_contiguous_logits_matches_torch(kwargs, shape):
    # logits that are a transposed view: the backward's flat-index shortcut must not write into a copy
    rng = np.random.default_rng(7)
    classes = shape[1]
    values = rng.standard_normal(shape[::-1])  # stored reversed, handed over as a transposed view
    target = rng.integers(0, classes, (shape[0],) + shape[2:])
    if "weight" in kwargs and classes != 4:
        pytest.skip("the class weights are for 4 classes")
    grads = []
    for lib, functional in ((dtorch, DF), (torch, TF)):
        leaf = lib.tensor(values, requires_grad=True)
        logits = leaf.permute(*reversed(range(len(shape))))
        options = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        loss = functional.cross_entropy(logits, lib.tensor(target), **options)
        (loss * loss).sum().backward()
        grads.append((loss.detach().numpy(), leaf.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-9, atol=1e-12)
