"""MultiheadAttention against PyTorch on identical weights: outputs, attention weights, and the gradients of
query, key, value and every parameter, over the options and mask kinds that change the computation."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn

RNG = np.random.default_rng(4321)
TOL = dict(rtol=1e-9, atol=1e-10)
E, HEADS, L, S, N = 8, 2, 5, 6, 3


@pytest.fixture(autouse=True)
def _seeded():
    """Torch draws the initial weights that both libraries then share: seed it so every run is the same."""
    torch.manual_seed(0)
    dtorch.manual_seed(0)


def _copy_weights(source, target):
    state = {name: dtorch.tensor(value.detach().numpy()) for name, value in source.state_dict().items()}
    target.load_state_dict(state)


def _pair(*args, **kwargs):
    torch_module = torch.nn.MultiheadAttention(*args, **kwargs).double()
    dtorch_module = nn.MultiheadAttention(*args, **kwargs).double()
    assert list(dtorch_module.state_dict()) == list(torch_module.state_dict())
    _copy_weights(torch_module, dtorch_module)
    return torch_module, dtorch_module


def _to(library, value, grad=False):
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return library.tensor(value, requires_grad=grad and value.dtype.kind == "f")
    return value


def check_module(torch_module, dtorch_module, inputs, kwargs=None, same_input=(), tol=TOL):
    """Call both modules on the same arrays; compare outputs (None skipped) and all gradients.

    ``inputs`` are arrays that get gradients; ``same_input`` lists positions that reuse input 0's tensor
    (self-attention passes one tensor as query, key and value). ``kwargs`` hold masks and flags; ``tol`` the
    ``assert_allclose`` tolerances.
    """
    kwargs = kwargs or {}
    t_inputs, d_inputs = [], []
    for position, array in enumerate(inputs):
        if position in same_input:
            t_inputs.append(t_inputs[0])
            d_inputs.append(d_inputs[0])
        else:
            t_inputs.append(_to(torch, array, grad=True))
            d_inputs.append(_to(dtorch, array, grad=True))
    t_kwargs = {k: _to(torch, v) for k, v in kwargs.items()}
    d_kwargs = {k: _to(dtorch, v) for k, v in kwargs.items()}
    t_out = torch_module(*t_inputs, **t_kwargs)
    d_out = dtorch_module(*d_inputs, **d_kwargs)
    t_out = t_out if isinstance(t_out, tuple) else (t_out,)
    d_out = d_out if isinstance(d_out, tuple) else (d_out,)
    t_loss = d_loss = 0
    for t_value, d_value in zip(t_out, d_out):
        assert (t_value is None) == (d_value is None)
        if t_value is None:
            continue
        assert tuple(d_value.shape) == tuple(t_value.shape)
        np.testing.assert_allclose(d_value.detach().numpy(), t_value.detach().numpy(), **tol)
        weight = RNG.standard_normal(tuple(t_value.shape))
        t_loss = t_loss + (t_value * torch.tensor(weight)).sum()
        d_loss = d_loss + (d_value * dtorch.tensor(weight)).sum()
    t_loss.backward()
    d_loss.backward()
    for position, (t_input, d_input) in enumerate(zip(t_inputs, d_inputs)):
        if position in same_input:
            continue
        np.testing.assert_allclose(d_input.grad.numpy(), t_input.grad.numpy(), err_msg=f"input {position}", **tol)
    d_params = dict(dtorch_module.named_parameters())
    for name, t_param in torch_module.named_parameters():
        if t_param.grad is None:
            assert d_params[name].grad is None or not np.any(d_params[name].grad.numpy()), name
            continue
        np.testing.assert_allclose(d_params[name].grad.numpy(), t_param.grad.numpy(), err_msg=name, **tol)


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
    torch_module, dtorch_module = _pair(E, HEADS, batch_first=batch_first, **options)
    q, k, v = _qkv(batch_first, options.get("kdim", E), options.get("vdim", E))
    check_module(torch_module, dtorch_module, [q, k, v])


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
@pytest.mark.parametrize("average", [True, False], ids=["avg_weights", "per_head_weights"])
def test_self_attention_one_tensor(batch_first, average):
    torch_module, dtorch_module = _pair(E, HEADS, batch_first=batch_first)
    x = RNG.standard_normal((N, L, E) if batch_first else (L, N, E))
    check_module(torch_module, dtorch_module, [x, x, x], {"average_attn_weights": average}, same_input=(1, 2))


def test_key_is_value_cross_attention():
    torch_module, dtorch_module = _pair(E, HEADS)
    q, k, _ = _qkv(False)
    check_module(torch_module, dtorch_module, [q, k, k], same_input=())
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
    torch_module, dtorch_module = _pair(E, HEADS, batch_first=batch_first)
    q, k, v = _qkv(batch_first)
    check_module(torch_module, dtorch_module, [q, k, v], MASKS[name])


def test_masks_with_bias_kv_and_zero_attn():
    torch_module, dtorch_module = _pair(E, HEADS, add_bias_kv=True, add_zero_attn=True)
    q, k, v = _qkv(False)
    causal = np.triu(np.ones((L, S), dtype=bool), k=1)
    check_module(torch_module, dtorch_module, [q, k, v], {"attn_mask": causal, "key_padding_mask": _padding_mask()})


def test_unbatched():
    torch_module, dtorch_module = _pair(E, HEADS)
    q, k, v = RNG.standard_normal((L, E)), RNG.standard_normal((S, E)), RNG.standard_normal((S, E))
    padding = np.zeros(S, dtype=bool)
    padding[-2:] = True
    check_module(torch_module, dtorch_module, [q, k, v], {"key_padding_mask": padding})


def test_dropout_eval_matches_and_train_differs():
    torch_module, dtorch_module = _pair(E, HEADS, dropout=0.5)
    torch_module.eval()
    dtorch_module.eval()
    q, k, v = _qkv(False)
    check_module(torch_module, dtorch_module, [q, k, v])
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
