"""Transformer layers against PyTorch on identical weights: outputs and gradients of inputs and parameters,
post-norm and pre-norm, relu/gelu/callable activations, masks, batch_first, train (dropout 0) and eval."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import check_module

# torch's own notes on its inputs (mixed bool/float masks are deprecated there; nested tensors need batch_first)
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched", "ignore:enable_nested_tensor")

RNG = np.random.default_rng(99)
# dtorch's erf (behind gelu) is accurate to ~1e-7 relative, also in float64
GELU_TOL = dict(rtol=1e-5, atol=1e-6)
EXACT_TOL = dict(rtol=1e-9, atol=1e-10)
D, HEADS, FF, S, T, N = 8, 2, 16, 6, 5, 3


def _library(nn_):
    return torch if nn_ is torch.nn else dtorch


def _check(build, inputs, call_kwargs=None, tol=EXACT_TOL, modes=("train", "eval")):
    """``check_module`` of ``build(library)`` (torch or dtorch) in float64."""
    return check_module(lambda nn_: build(_library(nn_)), inputs=inputs, call_kwargs=call_kwargs, dtype="float64",
                        modes=modes, **tol)


def _activation(name, library):
    if name == "callable":
        return lambda x: x.tanh() * 2.0
    if name == "module":
        return (torch.nn if library is torch else nn).GELU()
    return name


def _seq(length, batch_first):
    return RNG.standard_normal((N, length, D) if batch_first else (length, N, D))


def _causal(size):
    return np.triu(np.full((size, size), -np.inf), k=1)


def _padding(length):
    mask = RNG.random((N, length)) < 0.4
    mask[:, 0] = False
    return mask


LAYER_OPTIONS = [
    dict(),
    dict(norm_first=True),
    dict(activation="gelu", batch_first=True),
    dict(activation="callable", norm_first=True, batch_first=True),
    dict(activation="module"),
    dict(bias=False, layer_norm_eps=1e-3),
]
LAYER_IDS = ["post_relu", "pre_relu", "gelu_bf", "callable_pre_bf", "gelu_module", "nobias_eps"]


def _layer_kwargs(options, library):
    kwargs = dict(options)
    if "activation" in kwargs:
        kwargs["activation"] = _activation(kwargs["activation"], library)
    return dict(d_model=D, nhead=HEADS, dim_feedforward=FF, dropout=0.0, **kwargs)


@pytest.mark.parametrize("options", LAYER_OPTIONS, ids=LAYER_IDS)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "masks"])
def test_encoder_layer(options, masked):
    batch_first = options.get("batch_first", False)
    kwargs = {"src_mask": _causal(S), "src_key_padding_mask": _padding(S)} if masked else {}
    tol = GELU_TOL if "gelu" in str(options.get("activation")) or options.get("activation") == "module" else EXACT_TOL
    _check(lambda lib: lib.nn.TransformerEncoderLayer(**_layer_kwargs(options, lib)), [_seq(S, batch_first)], kwargs,
           tol=tol)


@pytest.mark.parametrize("options", LAYER_OPTIONS, ids=LAYER_IDS)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "masks"])
def test_decoder_layer(options, masked):
    batch_first = options.get("batch_first", False)
    kwargs = {}
    if masked:
        kwargs = {"tgt_mask": _causal(T), "tgt_key_padding_mask": _padding(T),
                  "memory_key_padding_mask": _padding(S), "memory_mask": np.zeros((T, S))}
    tol = GELU_TOL if "gelu" in str(options.get("activation")) or options.get("activation") == "module" else EXACT_TOL
    _check(lambda lib: lib.nn.TransformerDecoderLayer(**_layer_kwargs(options, lib)),
           [_seq(T, batch_first), _seq(S, batch_first)], kwargs, tol=tol)


@pytest.mark.parametrize("norm", [False, True], ids=["no_final_norm", "final_norm"])
def test_encoder_and_decoder_stacks(norm):
    def encoder(library):
        layer = library.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0)
        final = library.nn.LayerNorm(D) if norm else None
        if library is torch:
            return torch.nn.TransformerEncoder(layer, 2, final, enable_nested_tensor=False)
        return nn.TransformerEncoder(layer, 2, final)

    _check(encoder, [_seq(S, False)], {"mask": _causal(S), "src_key_padding_mask": _padding(S)})

    def decoder(library):
        layer = library.nn.TransformerDecoderLayer(D, HEADS, FF, dropout=0.0, norm_first=True)
        return library.nn.TransformerDecoder(layer, 2, library.nn.LayerNorm(D) if norm else None)

    _check(decoder, [_seq(T, False), _seq(S, False)], {"tgt_mask": _causal(T)})


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq_first", "batch_first"])
def test_full_transformer(batch_first):
    def build(library):
        return library.nn.Transformer(d_model=D, nhead=HEADS, num_encoder_layers=2, num_decoder_layers=1,
                                      dim_feedforward=FF, dropout=0.0, batch_first=batch_first,
                                      activation="gelu")

    kwargs = {"tgt_mask": _causal(T), "src_key_padding_mask": _padding(S),
              "memory_key_padding_mask": _padding(S)}
    _check(build, [_seq(S, batch_first), _seq(T, batch_first)], kwargs, tol=GELU_TOL)


def test_eval_mode_with_dropout_matches_torch():
    _, dtorch_module = _check(lambda lib: lib.nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.3), [_seq(S, False)],
                              modes=("eval",))
    dtorch_module.train()
    x = dtorch.tensor(_seq(S, False))
    first, second = dtorch_module(x), dtorch_module(x)
    assert not np.allclose(first.detach().numpy(), second.detach().numpy())


def test_square_subsequent_mask_and_defaults():
    for size in (1, 4):
        mask = nn.Transformer.generate_square_subsequent_mask(size)
        expected = torch.nn.Transformer.generate_square_subsequent_mask(size)
        assert mask.dtype == dtorch.float32
        np.testing.assert_array_equal(mask.numpy(), expected.numpy())
    model = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=8)
    reference = torch.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
                                     dim_feedforward=8)
    assert list(model.state_dict()) == list(reference.state_dict())
    layer = nn.TransformerEncoderLayer(16, 4)
    assert repr(layer) == repr(torch.nn.TransformerEncoderLayer(16, 4))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nn.TransformerEncoderLayer(16, 4, activation="tanh")
    with pytest.raises(RuntimeError, match="batch number"):
        model(dtorch.zeros(3, 2, 16), dtorch.zeros(3, 1, 16))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    import copy

    cpu = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True).double()
    gpu = copy.deepcopy(cpu).to("cuda")
    x = _seq(S, True)
    mask = _padding(S)
    results = []
    for module, device in ((cpu, "cpu"), (gpu, "cuda")):
        inp = dtorch.tensor(x, device=device, requires_grad=True)
        output = module(inp, src_key_padding_mask=dtorch.tensor(mask, device=device))
        output.sum().backward()
        results.append((output.detach().cpu().numpy(), inp.grad.cpu().numpy(),
                        module.self_attn.in_proj_weight.grad.cpu().numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(theirs, ours, rtol=1e-7, atol=1e-9)
