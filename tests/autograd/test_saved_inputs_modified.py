"""Properties every op below must keep, checked on one table of ops (``CASES``) and modules (``MODULES``).

- An input (or parameter, or the op's own output) changed in place between forward and backward: backward
  raises, or its gradients do not change.
- A non-contiguous (transposed) input gives the results of a contiguous one.

An input changed in place between forward and backward: backward raises, or its gradients do not change.

PyTorch raises ("one of the variables needed for gradient computation has been modified by an inplace operation")
whenever backward would read a saved input that was changed after forward, the classic case being an
``optimizer.step()`` (or a manual weight update under ``no_grad``) between ``loss = model(x)`` and
``loss.backward()``. dtorch must never instead compute gradients from the changed values. An op that keeps a copy
of what it needs (``xhat`` rather than ``x``) may go on without an error, as long as its gradients stay those of
the forward that ran; this test holds every op listed to one of the two: for each float input in turn it runs
forward, adds 0.5 to that input in place under ``no_grad``, runs backward, and then either a RuntimeError naming
the in-place change was raised or every gradient equals the one of an untouched run.
"""

import numpy as np
import pytest

import dtorch
import dtorch.nn.functional as F


def _rand(*shape, seed=0, low=None):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape)
    if low is not None:  # strictly inside (low, 1 - low): probabilities
        values = low + (1 - 2 * low) / (1 + np.exp(-values))
    return values


def _labels(*shape, classes=4, seed=3):
    return dtorch.tensor(np.random.default_rng(seed).integers(0, classes, shape))


# name: (function of the float inputs, their arrays); every float input requires grad
CASES = {
    "linear": (lambda x, w, b: F.linear(x, w, b), [_rand(3, 4), _rand(5, 4, seed=1), _rand(5, seed=2)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (4,), w, b), [_rand(3, 4), _rand(4, seed=1), _rand(4, seed=2)]),
    "layer_norm, blocked rows": (lambda x, w, b: F.layer_norm(x, (256,), w, b),
                                 [_rand(160, 256), _rand(256, seed=1), _rand(256, seed=2)]),
    "batch_norm, training": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                             [_rand(6, 3, 5), _rand(3, seed=1), _rand(3, seed=2)]),
    "batch_norm, training, 4-d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                                  [_rand(4, 3, 5, 5), _rand(3, seed=1), _rand(3, seed=2)]),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), [_rand(3, 4, 5), _rand(4, seed=1), _rand(4, seed=2)]),
    "instance_norm": (lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                      [_rand(2, 3, 6), _rand(3, seed=1), _rand(3, seed=2)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, padding=1), [_rand(2, 3, 5, 5), _rand(4, 3, 3, 3, seed=1),
                                                                _rand(4, seed=2)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2),
                         [_rand(2, 3, 4, 4), _rand(3, 2, 3, 3, seed=1), _rand(2, seed=2)]),
    "embedding": (lambda w: F.embedding(dtorch.tensor([[1, 3], [3, 0]]), w), [_rand(5, 4)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, _labels(6)), [_rand(6, 4)]),
    "cross_entropy, class weights": (lambda x, w: F.cross_entropy(x, _labels(6), weight=w),
                                     [_rand(6, 4), _rand(4, seed=1, low=0.1)]),
    "cross_entropy, probabilities": (lambda x, t: F.cross_entropy(x, t), [_rand(6, 4), _rand(6, 4, seed=1, low=0.1)]),
    "cross_entropy, blocked rows": (lambda x: F.cross_entropy(x, _labels(40, classes=1000)), [_rand(40, 1000)]),
    "nll_loss": (lambda x: F.nll_loss(x, _labels(6)), [_rand(6, 4)]),
    "binary_cross_entropy": (lambda x, t: F.binary_cross_entropy(x, t),
                             [_rand(6, low=0.05), _rand(6, seed=1, low=0.05)]),
    "binary_cross_entropy, weight": (lambda x, t, w: F.binary_cross_entropy(x, t, weight=w),
                                     [_rand(6, low=0.05), _rand(6, seed=1, low=0.05), _rand(6, seed=2, low=0.1)]),
    "binary_cross_entropy_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t),
                                         [_rand(6), _rand(6, seed=1, low=0.05)]),
    "mse_loss": (lambda x, t: F.mse_loss(x, t), [_rand(6), _rand(6, seed=1)]),
    "l1_loss": (lambda x, t: F.l1_loss(x, t), [_rand(6), _rand(6, seed=1)]),
    "smooth_l1_loss": (lambda x, t: F.smooth_l1_loss(x, t), [_rand(6), _rand(6, seed=1)]),
    "huber_loss": (lambda x, t: F.huber_loss(x, t), [_rand(6), _rand(6, seed=1)]),
    "kl_div": (lambda x, t: F.kl_div(x, t, reduction="batchmean"), [_rand(3, 4), _rand(3, 4, seed=1, low=0.1)]),
    "softmax": (lambda x: F.softmax(x, -1), [_rand(3, 4)]),
    "softmax, blocked rows": (lambda x: F.softmax(x, -1), [_rand(200, 300)]),
    "log_softmax": (lambda x: F.log_softmax(x, -1), [_rand(3, 4)]),
    "gelu": (lambda x: F.gelu(x), [_rand(3, 4)]),
    "gelu, float32 pieces": (lambda x: F.gelu(x.float()), [_rand(3, 4)]),
    "silu": (lambda x: F.silu(x), [_rand(3, 4)]),
    "sigmoid": (lambda x: dtorch.sigmoid(x), [_rand(3, 4)]),
    "tanh": (lambda x: dtorch.tanh(x), [_rand(3, 4)]),
    "exp": (lambda x: dtorch.exp(x), [_rand(3, 4)]),
    "log": (lambda x: dtorch.log(x), [_rand(3, 4, low=0.1)]),
    "sqrt": (lambda x: dtorch.sqrt(x), [_rand(3, 4, low=0.1)]),
    "pow": (lambda x, y: dtorch.pow(x, y), [_rand(3, 4, low=0.1), _rand(3, 4, seed=1)]),
    "mul": (lambda x, y: x * y, [_rand(3, 4), _rand(3, 4, seed=1)]),
    "div": (lambda x, y: x / y, [_rand(3, 4), _rand(3, 4, seed=1, low=0.1)]),
    "matmul": (lambda x, y: x @ y, [_rand(3, 4), _rand(4, 2, seed=1)]),
    "bmm": (lambda x, y: dtorch.bmm(x, y), [_rand(2, 3, 4), _rand(2, 4, 2, seed=1)]),
    "relu": (lambda x: F.relu(x), [_rand(3, 4)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [_rand(2, 3, 4, 4)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), [_rand(2, 3, 4, 4)]),
    "max along a dim": (lambda x: x.max(dim=1)[0], [_rand(3, 4)]),
    "norm": (lambda x: x.norm(), [_rand(3, 4)]),
    "cosine_similarity": (lambda x, y: F.cosine_similarity(x, y), [_rand(3, 4), _rand(3, 4, seed=1)]),
    "scaled_dot_product_attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
                                     [_rand(2, 3, 4), _rand(2, 3, 4, seed=1), _rand(2, 3, 4, seed=2)]),
    "prelu": (lambda x, w: F.prelu(x, w), [_rand(3, 4), _rand(1, seed=1, low=0.1)]),
    "elu": (lambda x: F.elu(x), [_rand(3, 4)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), [_rand(3, 4)]),
    "softplus": (lambda x: F.softplus(x), [_rand(3, 4)]),
    "logsigmoid": (lambda x: F.logsigmoid(x), [_rand(3, 4)]),
    "hardtanh": (lambda x: F.hardtanh(x), [_rand(3, 4)]),
    "glu": (lambda x: F.glu(x, -1), [_rand(3, 4)]),
    "normalize": (lambda x: F.normalize(x, dim=-1), [_rand(3, 4)]),
    "pad, reflect": (lambda x: F.pad(x, (1, 1), mode="reflect"), [_rand(2, 3, 4)]),
    "interpolate, bilinear": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), [_rand(1, 2, 3, 3)]),
    "margin_ranking_loss": (lambda a, b: F.margin_ranking_loss(a, b, dtorch.tensor([1.0, -1.0, 1.0])),
                            [_rand(3), _rand(3, seed=1)]),
    "cosine_embedding_loss": (lambda a, b: F.cosine_embedding_loss(a, b, dtorch.tensor([1.0, -1.0, 1.0])),
                              [_rand(3, 4), _rand(3, 4, seed=1)]),
    "triplet_margin_loss": (lambda a, p, n: F.triplet_margin_loss(a, p, n),
                            [_rand(3, 4), _rand(3, 4, seed=1), _rand(3, 4, seed=2)]),
    "multi_margin_loss": (lambda x: F.multi_margin_loss(x, _labels(6)), [_rand(6, 4)]),
    "soft_margin_loss": (lambda x: F.soft_margin_loss(x, dtorch.tensor([1.0, -1.0, 1.0])), [_rand(3)]),
    "poisson_nll_loss": (lambda x, t: F.poisson_nll_loss(x, t), [_rand(6), _rand(6, seed=1, low=0.1)]),
    "gaussian_nll_loss": (lambda x, t, v: F.gaussian_nll_loss(x, t, v),
                          [_rand(6), _rand(6, seed=1), _rand(6, seed=2, low=0.1)]),
    "hinge_embedding_loss": (lambda x: F.hinge_embedding_loss(x, dtorch.tensor([1.0, -1.0, 1.0])), [_rand(3)]),
    "multilabel_soft_margin_loss": (lambda x, t: F.multilabel_soft_margin_loss(x, t),
                                    [_rand(3, 4), _rand(3, 4, seed=1, low=0.1)]),
    "cumsum": (lambda x: dtorch.cumsum(x, 1), [_rand(3, 4)]),
    "cumprod": (lambda x: dtorch.cumprod(x, 1), [_rand(3, 4)]),
    "prod": (lambda x: x.prod(1), [_rand(3, 4)]),
    "std": (lambda x: x.std(1), [_rand(3, 4)]),
    "logsumexp": (lambda x: dtorch.logsumexp(x, 1), [_rand(3, 4)]),
    "addmm": (lambda b, x, y: dtorch.addmm(b, x, y), [_rand(3, 2), _rand(3, 4, seed=1), _rand(4, 2, seed=2)]),
    "einsum": (lambda x, y: dtorch.einsum("ij,jk->ik", x, y), [_rand(3, 4), _rand(4, 2, seed=1)]),
    "atan2": (lambda x, y: dtorch.atan2(x, y), [_rand(3, 4), _rand(3, 4, seed=1)]),
    "lerp": (lambda x, y, w: dtorch.lerp(x, y, w), [_rand(3, 4), _rand(3, 4, seed=1), _rand(3, 4, seed=2)]),
    "where": (lambda x, y: dtorch.where(x > 0, x, y), [_rand(3, 4), _rand(3, 4, seed=1)]),
    "conv2d, stride 2, groups 2, dilation 2": (lambda x, w: F.conv2d(x, w, stride=2, groups=2, dilation=2, padding=2),
                                               [_rand(2, 4, 7, 7), _rand(4, 2, 3, 3, seed=1)]),
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b, padding=1),
               [_rand(2, 3, 8), _rand(4, 3, 3, seed=1), _rand(4, seed=2)]),
    "conv3d": (lambda x, w: F.conv3d(x, w), [_rand(1, 2, 4, 4, 4), _rand(3, 2, 2, 2, 2, seed=1)]),
    "max_pool2d, indices": (lambda x: F.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)[0],
                            [_rand(2, 3, 7, 7)]),
    "avg_pool2d, padded": (lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
                           [_rand(2, 3, 7, 7)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), [_rand(2, 3, 5, 7)]),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, 2), [_rand(2, 3, 5, 5)]),
    "max_pool1d": (lambda x: F.max_pool1d(x, 2), [_rand(2, 3, 8)]),
    "interpolate, nearest": (lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), [_rand(1, 2, 3, 3)]),
    "interpolate, bicubic": (lambda x: F.interpolate(x, size=(5, 4), mode="bicubic", align_corners=True),
                             [_rand(1, 2, 3, 3)]),
    "pad, replicate": (lambda x: F.pad(x, (1, 2, 2, 1), mode="replicate"), [_rand(1, 2, 3, 3)]),
    "pad, circular": (lambda x: F.pad(x, (1, 1), mode="circular"), [_rand(2, 3, 4)]),
    "unfold": (lambda x: F.unfold(x, 2, stride=1), [_rand(2, 3, 4, 4)]),
    "fold": (lambda x: F.fold(x, (3, 3), 2), [_rand(2, 12, 4)]),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), [_rand(1, 8, 2, 3)]),
    "layer_norm, two dims": (lambda x, w: F.layer_norm(x, (3, 4), w), [_rand(2, 3, 4), _rand(3, 4, seed=1)]),
    "group_norm, 4-d": (lambda x, w, b: F.group_norm(x, 3, w, b),
                        [_rand(2, 6, 3, 3), _rand(6, seed=1), _rand(6, seed=2)]),
    "batch_norm, eval": (lambda x, w, b: F.batch_norm(x, dtorch.zeros(3).double(), dtorch.ones(3).double(), w, b),
                         [_rand(4, 3, 5), _rand(3, seed=1), _rand(3, seed=2)]),
    "cross_entropy, 3-d": (lambda x: F.cross_entropy(x, _labels(2, 5)), [_rand(2, 4, 5)]),
    "cross_entropy, smoothing": (lambda x: F.cross_entropy(x, _labels(6), label_smoothing=0.2), [_rand(6, 4)]),
    "nll_loss, 3-d, weights": (lambda x, w: F.nll_loss(x, _labels(2, 5), weight=w),
                               [_rand(2, 4, 5), _rand(4, seed=1, low=0.1)]),
    "log_softmax, dim 0": (lambda x: F.log_softmax(x, 0), [_rand(3, 4)]),
    "softmax, 3-d, dim 1": (lambda x: F.softmax(x, 1), [_rand(2, 3, 4)]),
    "pairwise_distance": (lambda x, y: F.pairwise_distance(x, y), [_rand(3, 4), _rand(3, 4, seed=1)]),
    "bilinear": (lambda x, y, w, b: F.bilinear(x, y, w, b),
                 [_rand(3, 2), _rand(3, 4, seed=1), _rand(5, 2, 4, seed=2), _rand(5, seed=3)]),
    "linear, 3-d input": (lambda x, w: F.linear(x, w), [_rand(2, 3, 4), _rand(5, 4, seed=1)]),
    "matmul, broadcast": (lambda x, y: x @ y, [_rand(2, 3, 4), _rand(4, 5, seed=1)]),
    "baddbmm": (lambda b, x, y: dtorch.baddbmm(b, x, y),
                [_rand(2, 3, 2), _rand(2, 3, 4, seed=1), _rand(2, 4, 2, seed=2)]),
    "einsum, batched": (lambda x, y: dtorch.einsum("bij,bjk->bik", x, y), [_rand(2, 3, 4), _rand(2, 4, 2, seed=1)]),
    "index_add": (lambda x, y: x.index_add(0, dtorch.tensor([0, 2, 0]), y), [_rand(3, 4), _rand(3, 4, seed=1)]),
    "scatter_add": (lambda x, y: x.scatter_add(1, dtorch.tensor([[0, 1, 1, 3]] * 3), y),
                    [_rand(3, 4), _rand(3, 4, seed=1)]),
    "topk": (lambda x: x.topk(2, 1)[0], [_rand(3, 4)]),
    "sort": (lambda x: x.sort(1)[0], [_rand(3, 4)]),
    "median, dim": (lambda x: x.median(1)[0], [_rand(3, 5)]),
    "var_mean": (lambda x: dtorch.var_mean(x, 1)[0], [_rand(3, 4)]),
    "norm, p=1": (lambda x: x.norm(p=1, dim=1), [_rand(3, 4)]),
    "trace": (lambda x: x.trace(), [_rand(4, 4)]),
    "tril": (lambda x: x.tril(), [_rand(4, 4)]),
    "roll": (lambda x: x.roll(1, 1), [_rand(3, 4)]),
    "repeat_interleave": (lambda x: x.repeat_interleave(2, 0), [_rand(3, 4)]),
    "expand and multiply": (lambda x, y: x[:, :1].expand(3, 4) * y, [_rand(3, 4), _rand(3, 4, seed=1)]),
    "cat, dim 1": (lambda x, y: dtorch.cat([x, y], 1), [_rand(3, 4), _rand(3, 2, seed=1)]),
    "stack, dim 2": (lambda x, y: dtorch.stack([x, y], 2), [_rand(3, 4), _rand(3, 4, seed=1)]),
    "chunk and multiply": (lambda x: x.chunk(2, 1)[0] * x.chunk(2, 1)[1], [_rand(3, 4)]),
    "dropout, eval": (lambda x: F.dropout(x, 0.5, training=False), [_rand(3, 4)]),
    "hardswish": (lambda x: F.hardswish(x), [_rand(3, 4)]),
    "mish": (lambda x: F.mish(x), [_rand(3, 4)]),
    "softsign": (lambda x: F.softsign(x), [_rand(3, 4)]),
    "celu": (lambda x: F.celu(x), [_rand(3, 4)]),
    "selu": (lambda x: F.selu(x), [_rand(3, 4)]),
    "relu6": (lambda x: F.relu6(x * 4), [_rand(3, 4)]),
    "erf": (lambda x: dtorch.erf(x), [_rand(3, 4)]),
    "logit": (lambda x: dtorch.logit(x), [_rand(3, 4, low=0.1)]),
    "logit, eps": (lambda x: dtorch.logit(x, 0.3), [_rand(3, 4, low=0.1)]),
    "rsqrt": (lambda x: dtorch.rsqrt(x), [_rand(3, 4, low=0.1)]),
    "reciprocal": (lambda x: x.reciprocal(), [_rand(3, 4, low=0.1)]),
    "amax": (lambda x: x.amax(1), [_rand(3, 4)]),
    "min, all": (lambda x: x.min(), [_rand(3, 4)]),
    "cummax": (lambda x: x.cummax(1)[0], [_rand(3, 4)]),
    "diff": (lambda x: dtorch.diff(x, dim=1), [_rand(3, 4)]),
    "kron": (lambda x, y: dtorch.kron(x, y), [_rand(2, 2), _rand(2, 3, seed=1)]),
    "cross": (lambda x, y: dtorch.cross(x, y, dim=1), [_rand(4, 3), _rand(4, 3, seed=1)]),
    "linalg.norm, matrix": (lambda x: dtorch.linalg.norm(x), [_rand(3, 4)]),
    "linalg.solve": (lambda a, b: dtorch.linalg.solve(a, b), [_rand(3, 3) + 3 * np.eye(3), _rand(3, 2, seed=1)]),
    "linalg.cholesky": (lambda a: dtorch.linalg.cholesky(a @ a.mT + dtorch.eye(3, dtype=dtorch.float64)),
                        [_rand(3, 3)]),
    "linalg.slogdet": (lambda a: dtorch.linalg.slogdet(a)[1], [_rand(3, 3) + 3 * np.eye(3)]),
    "logdet": (lambda a: dtorch.logdet(a @ a.mT + dtorch.eye(3, dtype=dtorch.float64)), [_rand(3, 3)]),
    "fft.rfft": (lambda x: dtorch.fft.rfft(x).abs(), [_rand(3, 8)]),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), [_rand(3, 4)]),
    "cdist": (lambda x, y: dtorch.cdist(x, y), [_rand(3, 4), _rand(2, 4, seed=1)]),
    "masked_fill": (lambda x: x.masked_fill(dtorch.tensor([True, False, True, False]), 0.0), [_rand(3, 4)]),
    "index_select": (lambda x: x.index_select(0, dtorch.tensor([2, 0])), [_rand(3, 4)]),
    "gather": (lambda x: x.gather(1, dtorch.tensor([[0, 1], [2, 3], [1, 1]])), [_rand(3, 4)]),
    "linalg.inv": (lambda x: dtorch.linalg.inv(x), [_rand(3, 3) + 3 * np.eye(3)]),
    "det": (lambda x: dtorch.det(x), [_rand(3, 3) + 3 * np.eye(3)]),
}


def _run(function, arrays, changed=None):
    """Forward, (optionally) input ``changed`` += 0.5 in place, backward of the sum of squares: the gradients,
    or the RuntimeError backward raised."""
    inputs = [dtorch.tensor(array, requires_grad=True) for array in arrays]
    out = function(*inputs)
    if isinstance(out, tuple):
        out = out[0]
    loss = (out * out).sum()
    if changed is not None:
        with dtorch.no_grad():
            inputs[changed].add_(0.5)
    try:
        loss.backward()
    except RuntimeError as error:
        return error
    return [None if t.grad is None else t.grad.numpy().copy() for t in inputs]


def _assert_raised_or_unchanged(result, expected, what):
    """``result`` is PyTorch's in-place RuntimeError, or gradients equal to ``expected`` (``what`` was changed)."""
    if isinstance(result, RuntimeError):
        assert "modified by an inplace operation" in str(result), str(result)
        return
    for index, (got, want) in enumerate(zip(result, expected)):
        if want is None:
            assert got is None
            continue
        np.testing.assert_allclose(
            got, want, rtol=1e-6, atol=1e-7,
            err_msg=f"{what} changed in place after forward gave gradient {index} from the changed values, without "
                    "an error")


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_input_changed_in_place_after_forward_raises_or_leaves_the_gradients_alone(name):
    function, arrays = CASES[name]
    expected = _run(function, arrays)
    assert not isinstance(expected, Exception), expected
    for changed in range(len(arrays)):
        _assert_raised_or_unchanged(_run(function, arrays, changed), expected, f"{name}: input {changed}")


def test_the_check_above_fails_for_an_op_that_reads_a_changed_input():
    """The property has teeth: an op whose backward reads its input without a saved-version check is caught."""

    class ReadsItsInput(dtorch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.kept = x  # kept on the context without save_for_backward: no version check
            return x * x

        @staticmethod
        def backward(ctx, grad):
            return 2 * ctx.kept * grad

    expected = _run(lambda x: ReadsItsInput.apply(x), [_rand(3)])
    result = _run(lambda x: ReadsItsInput.apply(x), [_rand(3)], changed=0)
    assert not isinstance(result, Exception)
    assert not np.allclose(result[0], expected[0])


MODULES = {
    "LSTM": (lambda: dtorch.nn.LSTM(3, 4, num_layers=2), (5, 2, 3)),
    "GRU": (lambda: dtorch.nn.GRU(3, 4), (5, 2, 3)),
    "RNN": (lambda: dtorch.nn.RNN(3, 4), (5, 2, 3)),
    "MultiheadAttention": (lambda: _SelfAttention(dtorch.nn.MultiheadAttention(4, 2)), (3, 2, 4)),
    "TransformerEncoderLayer": (lambda: dtorch.nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0),
                                (3, 2, 4)),
    "BatchNorm2d": (lambda: dtorch.nn.BatchNorm2d(3), (4, 3, 2, 2)),
    "Conv1d": (lambda: dtorch.nn.Conv1d(3, 2, 3), (2, 3, 6)),
}


class _SelfAttention(dtorch.nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.attention = attention

    def forward(self, x):
        return self.attention(x, x, x)[0]


def _run_module(make, shape, changed=None):
    """As ``_run`` for a module: its parameter number ``changed`` gets += 0.5 after forward."""
    dtorch.manual_seed(0)
    module = make().double()
    x = dtorch.tensor(_rand(*shape), requires_grad=True)
    out = module(x)
    if isinstance(out, tuple):
        out = out[0]
    loss = (out * out).sum()
    parameters = list(module.parameters())
    if changed is not None:
        with dtorch.no_grad():
            parameters[changed].add_(0.5)
    try:
        loss.backward()
    except RuntimeError as error:
        return error, len(parameters)
    return [x.grad.numpy().copy()] + [p.grad.numpy().copy() for p in parameters], len(parameters)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_parameter_changed_in_place_after_forward_raises_or_leaves_the_gradients_alone(name):
    """The optimizer-step-before-backward mistake: PyTorch raises; dtorch raises or computes the right gradients."""
    make, shape = MODULES[name]
    expected, count = _run_module(make, shape)
    assert not isinstance(expected, Exception), expected
    for changed in range(count):
        result, _ = _run_module(make, shape, changed)
        _assert_raised_or_unchanged(result, expected, f"{name} (gradient 0 is the input's): parameter {changed}")


def test_a_check_only_save_keeps_no_input_alive_and_still_sees_its_base_changed():
    """``saved_inputs_for_check_only`` ops hold the Tensor with the version counter weakly: a view given to them
    may die, and a later in-place change through its base is still caught (the base carries the counter)."""
    import gc
    import weakref

    leaf = dtorch.randn(2, 3, 8, requires_grad=True)
    base = leaf * 1.0
    view = base[..., :4]
    out = F.scaled_dot_product_attention(view, view, view)
    alive = weakref.ref(view)
    del view
    gc.collect()
    assert alive() is None
    with dtorch.no_grad():
        base.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def _run_output_changed(function, arrays, change):
    """Forward, then (with ``change``) the output += 0.5 in place under ``no_grad``, backward of the output's
    sum (a sum keeps nothing, so only the op itself can read the output): the gradients, or the RuntimeError."""
    inputs = [dtorch.tensor(array, requires_grad=True) for array in arrays]
    out = function(*inputs)
    if isinstance(out, tuple):
        out = out[0]
    loss = out.sum()
    if change:
        with dtorch.no_grad():
            out.add_(0.5)
    try:
        loss.backward()
    except RuntimeError as error:
        return error
    return [None if t.grad is None else t.grad.numpy().copy() for t in inputs]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_output_changed_in_place_after_forward_raises_or_leaves_the_gradients_alone(name):
    """Ops whose backward reads their own output (exp, sigmoid, softmax, ...) must see it changed."""
    function, arrays = CASES[name]
    expected = _run_output_changed(function, arrays, change=False)
    assert not isinstance(expected, Exception), expected
    _assert_raised_or_unchanged(_run_output_changed(function, arrays, change=True), expected, f"{name}: the output")


def _run_with_layout(function, arrays, strided):
    """Forward and backward of the sum of squares; with ``strided`` every input of 2 or more dimensions is a
    transposed view of an array stored the other way round (same values, non-contiguous). Returns the output and
    the gradients in the inputs' own orientation."""
    leaves, inputs = [], []
    for array in arrays:
        if strided and array.ndim >= 2:
            leaf = dtorch.tensor(np.ascontiguousarray(array.transpose()), requires_grad=True)
            inputs.append(leaf.permute(*reversed(range(array.ndim))))
        else:
            leaf = dtorch.tensor(array, requires_grad=True)
            inputs.append(leaf)
        leaves.append(leaf)
    out = function(*inputs)
    if isinstance(out, tuple):
        out = out[0]
    (out * out).sum().backward()
    grads = []
    for leaf, array in zip(leaves, arrays):
        grad = None if leaf.grad is None else leaf.grad.numpy()
        if grad is not None and strided and array.ndim >= 2:
            grad = grad.transpose()
        grads.append(grad)
    return out.detach().numpy(), grads


@pytest.mark.parametrize("name", sorted(CASES))
def test_non_contiguous_inputs_give_the_results_of_contiguous_ones(name):
    """Fast paths pick layouts (blocked rows, flat indices into a gradient): a strided input must not change a
    value. (This caught cross_entropy's backward writing its target term into a copy of strided exponentials.)"""
    function, arrays = CASES[name]
    expected_out, expected_grads = _run_with_layout(function, arrays, strided=False)
    out, grads = _run_with_layout(function, arrays, strided=True)
    np.testing.assert_allclose(out, expected_out, rtol=1e-6, atol=1e-7)
    for index, (got, want) in enumerate(zip(grads, expected_grads)):
        if want is None:
            assert got is None
            continue
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=f"{name}: gradient {index}")
