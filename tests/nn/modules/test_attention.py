"""MultiheadAttention against PyTorch on identical weights: outputs, attention weights, and the gradients of
query, key, value and every parameter, over the options and mask kinds that change the computation."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import check_module

RNG = np.random.default_rng(4321)
TOL = dict(rtol=1e-9, atol=1e-10)
E, HEADS, L, S, N = 8, 2, 5, 6, 3


def _check(inputs, call_kwargs=None, same_input=(), modes=("train", "eval"), **options):
    """``check_module`` of ``MultiheadAttention(E, HEADS, **options)`` in float64: outputs (None skipped) and the
    gradients of every input and parameter."""
    return check_module(lambda nn_: nn_.MultiheadAttention(E, HEADS, **options), inputs=inputs,
                        call_kwargs=call_kwargs, same_input=same_input, dtype="float64", modes=modes, **TOL)


def _qkv(batch_first, kdim=E, vdim=E):
    def shape(length, width):
        return (N, length, width) if batch_first else (length, N, width)

    return (RNG.standard_normal(shape(L, E)), RNG.standard_normal(shape(S, kdim)),
            RNG.standard_normal(shape(S, vdim)))


def _padding_mask():
    mask = RNG.random((N, S)) < 0.4
    mask[:, 0] = False  # every query keeps at least one key (an all-masked row is NaN in both libraries)
    return mask


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("options", [
    {},
    {"bias": False},
    {"kdim": 3, "vdim": 7},
    {"add_bias_kv": True},
    {"add_zero_attn": True},
    {"add_bias_kv": True, "add_zero_attn": True, "kdim": 4, "vdim": 4},
], ids=["plain", "nobias", "kdim_vdim", "bias_kv", "zero_attn", "kv_zero_kvdim"])
def test_cross_attention_options(batch_first, options):
    q, k, v = _qkv(batch_first, options.get("kdim", E), options.get("vdim", E))
    _check([q, k, v], batch_first=batch_first, **options)


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("average", [True, False], ids=["avg_weights", "per_head_weights"])
def test_self_attention_one_tensor(batch_first, average):
    x = RNG.standard_normal((N, L, E) if batch_first else (L, N, E))
    _check([x, x, x], {"average_attn_weights": average}, same_input=(1, 2), batch_first=batch_first)


def test_key_is_value_cross_attention():
    q, k, _ = _qkv(False)
    torch_module, dtorch_module = _check([q, k, k], same_input=())
    # key and value as one tensor object
    t_q, t_kv = torch.tensor(q), torch.tensor(k, requires_grad=True)
    d_q, d_kv = dtorch.tensor(q), dtorch.tensor(k, requires_grad=True)
    t_out = torch_module(t_q, t_kv, t_kv)[0]
    d_out = dtorch_module(d_q, d_kv, d_kv)[0]
    np.testing.assert_allclose(d_out.detach().numpy(), t_out.detach().numpy(), **TOL)
    t_out.sum().backward()
    d_out.sum().backward()
    np.testing.assert_allclose(d_kv.grad.numpy(), t_kv.grad.numpy(), **TOL)


def _masks():
    causal_bool = np.triu(np.ones((L, S), dtype=bool), k=1)
    float_2d = RNG.standard_normal((L, S))
    float_2d[causal_bool] = -np.inf
    bool_3d = RNG.random((N * HEADS, L, S)) < 0.3
    bool_3d[..., 0] = False
    return {
        "bool_2d": {"attn_mask": causal_bool},
        "float_2d": {"attn_mask": float_2d},
        "bool_3d": {"attn_mask": bool_3d},
        "float_3d": {"attn_mask": RNG.standard_normal((N * HEADS, L, S))},
        "padding": {"key_padding_mask": _padding_mask()},
        "padding_float": {"key_padding_mask": np.where(_padding_mask(), -np.inf, 0.0)},
        "padding_and_bool_2d": {"key_padding_mask": _padding_mask(), "attn_mask": causal_bool},
        "no_weights_padding": {"key_padding_mask": _padding_mask(), "need_weights": False},
    }


MASKS = _masks()


@pytest.mark.parametrize("name", list(MASKS))
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
def test_masks(name, batch_first):
    q, k, v = _qkv(batch_first)
    _check([q, k, v], MASKS[name], batch_first=batch_first)


def test_masks_with_bias_kv_and_zero_attn():
    q, k, v = _qkv(False)
    causal = np.triu(np.ones((L, S), dtype=bool), k=1)
    _check([q, k, v], {"attn_mask": causal, "key_padding_mask": _padding_mask()}, add_bias_kv=True,
           add_zero_attn=True)


def test_unbatched():
    q, k, v = RNG.standard_normal((L, E)), RNG.standard_normal((S, E)), RNG.standard_normal((S, E))
    padding = np.zeros(S, dtype=bool)
    padding[-2:] = True
    _check([q, k, v], {"key_padding_mask": padding})


def test_dropout_eval_matches_and_train_differs():
    q, k, v = _qkv(False)
    _, dtorch_module = _check([q, k, v], modes=("eval",), dropout=0.5)
    dtorch_module.train()
    x = [dtorch.tensor(a) for a in (q, k, v)]
    _, weights = dtorch_module(*x, average_attn_weights=False)
    values = weights.detach().numpy()
    assert np.any(values == 0)  # dropped probabilities
    assert not np.allclose(values.sum(-1), 1.0)  # survivors scaled by 1 / (1 - p), rows no longer sum to 1


def test_defaults_init_and_errors():
    mha = nn.MultiheadAttention(8, 2)
    reference = torch.nn.MultiheadAttention(8, 2)
    assert repr(mha) == repr(reference)
    assert np.all(mha.in_proj_bias.detach().numpy() == 0)
    assert np.all(mha.out_proj.bias.detach().numpy() == 0)
    bound = np.sqrt(6.0 / (8 + 24))
    assert np.abs(mha.in_proj_weight.detach().numpy()).max() <= bound
    with pytest.raises(AssertionError, match="divisible"):
        nn.MultiheadAttention(7, 2)
    x = dtorch.randn(L, N, 8)
    with pytest.raises(RuntimeError, match="2D attn_mask"):
        mha(x, x, x, attn_mask=dtorch.zeros(L, L + 1))
    with pytest.raises(RuntimeError, match="is_causal"):
        mha(x, x, x, is_causal=True)
