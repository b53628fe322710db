"""``dtorch.onnx.export``: files that pass the full checker and run on onnx's reference evaluator and on
onnxruntime with the outputs of dtorch and PyTorch, dynamic axes included. Skips without the ``onnx`` extra."""

import io
import os
import sys

import numpy as np
import pytest

import dtorch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jit"))
from export_models import (  # noqa: E402
    DYNAMIC_AXES, INPUT_NAMES, UsesClip, as_dtorch, dtorch_model, make_inputs, outputs_numpy, torch_twin,
)


onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
from onnx.reference import ReferenceEvaluator  # noqa: E402


def _export(model, args, **kwargs):
    buffer = io.BytesIO()
    dtorch.onnx.export(model, args, buffer, **kwargs)
    data = buffer.getvalue()
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    return data, proto


def _run_both(data, proto, feeds):
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, feeds), ReferenceEvaluator(proto).run(None, feeds)


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm", "transformer"])
def test_tutorial_models_match_dtorch_and_pytorch_on_both_runtimes(name):
    model = dtorch_model(name)
    output_names = ["logits", "hidden"] if name == "lstm" else ["out"]
    data, proto = _export(model, as_dtorch(make_inputs(name, 2, length=4)), input_names=INPUT_NAMES[name],
                          output_names=output_names, dynamic_axes=DYNAMIC_AXES[name])
    fresh = make_inputs(name, 3, length=7, seed=11)  # a batch size and sequence length the export never saw
    feeds = dict(zip(INPUT_NAMES[name], fresh))
    expected = outputs_numpy(model(*as_dtorch(fresh)))
    import torch

    with torch.no_grad():
        reference = outputs_numpy(torch_twin(name, model)(*[torch.from_numpy(a) for a in fresh]))
    for runtime_outputs in _run_both(data, proto, feeds):
        assert len(runtime_outputs) == len(expected)
        for got, want, theirs in zip(runtime_outputs, expected, reference):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(got, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", [18, 21, 23])
def test_opsets_carry_an_ir_version_the_runtime_reads(opset):
    dtorch.manual_seed(0)
    model = dtorch.nn.Sequential(dtorch.nn.Flatten(), dtorch.nn.Linear(12, 8), dtorch.nn.GELU(),
                                 dtorch.nn.LayerNorm(8)).eval()  # Gelu is an ONNX op from opset 20, decomposed before
    data, proto = _export(model, as_dtorch(make_inputs("mlp", 2)), opset_version=opset, input_names=["x"],
                          dynamic_axes={"x": [0]})
    assert proto.opset_import[0].version == opset
    assert proto.ir_version == dtorch.onnx.IR_VERSION_FOR_OPSET[opset]
    x = make_inputs("mlp", 5, seed=3)[0]
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], outputs_numpy(model(dtorch.tensor(x)))[0],
                               rtol=1e-4, atol=1e-5)


def test_default_opset_and_file_path(tmp_path):
    path = tmp_path / "model.onnx"
    model = dtorch.nn.Sequential(dtorch.nn.Linear(4, 8), dtorch.nn.GELU(), dtorch.nn.LayerNorm(8),
                                 dtorch.nn.Softmax(dim=-1)).eval()
    x = dtorch.randn(2, 4)
    assert dtorch.onnx.export(model, (x,), str(path)) is None
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == 20
    onnx.checker.check_model(proto, full_check=True)
    got = ReferenceEvaluator(proto).run(None, {proto.graph.input[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_gru_bidirectional_and_relu_rnn_layers():
    for layer in (dtorch.nn.GRU(5, 6, num_layers=2, bidirectional=True), dtorch.nn.RNN(5, 4, nonlinearity="relu")):
        dtorch.manual_seed(0)
        layer.eval()
        x = dtorch.randn(4, 2, 5)
        data, proto = _export(layer, (x,), input_names=["x"], dynamic_axes={"x": {0: "time", 1: "batch"}})
        fresh = np.random.default_rng(1).standard_normal((6, 3, 5)).astype(np.float32)
        expected = outputs_numpy(layer(dtorch.tensor(fresh)))
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        for got, want in zip(session.run(None, {"x": fresh}), expected):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_an_op_without_converter_is_named():
    class Cumulative(dtorch.nn.Module):
        def forward(self, x):
            return dtorch.cumsum(x, 0)

    with pytest.raises(dtorch.onnx.UnsupportedOperatorError, match="'CumSum'"):
        dtorch.onnx.export(Cumulative(), (dtorch.ones(3),), io.BytesIO())


def test_arguments_are_checked():
    model = dtorch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="opset_version 17"):
        dtorch.onnx.export(model, (dtorch.ones(1, 2),), io.BytesIO(), opset_version=17)
    with pytest.raises(ValueError, match="'y'"):
        dtorch.onnx.export(model, (dtorch.ones(1, 2),), io.BytesIO(), input_names=["x"], dynamic_axes={"y": [0]})
    program = dtorch.onnx.export(model, (dtorch.ones(1, 2),), dynamo=True)
    assert program.model_proto.graph.node
    np.testing.assert_allclose(program(np.ones((1, 2), np.float32))[0], model(dtorch.ones(1, 2)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="export_params"):
        dtorch.onnx.export(model, (dtorch.ones(1, 2),), io.BytesIO(), export_params=False)
    data, proto = _export(model, (dtorch.ones(1, 2),), keep_initializers_as_inputs=True)
    assert {i.name for i in proto.graph.input} >= {"weight", "bias"}
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": np.ones((1, 2), np.float32)})[0],
                               model(dtorch.ones(1, 2)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_export_keeps_the_model_training_mode():
    model = dtorch_model("cnn").train()
    _export(model, as_dtorch(make_inputs("cnn", 2)))
    assert model.training and model.bn1.training


def test_attention_padding_reductions_and_comparisons():
    import torch

    def forward(t, q, k, v, x):
        a = t.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        c = t.nn.functional.pad(x, (1, 2, 0, 1), value=0.5).repeat(1, 2, 1).amax(dim=1)
        d = (x > 0).logical_and(x < 1).float() + x.floor() + x.argmax(dim=-1, keepdim=True)
        return a, c, d

    class Mixed(dtorch.nn.Module):
        def forward(self, q, k, v, x):
            return forward(dtorch, q, k, v, x)

    rng = np.random.default_rng(0)
    example = [rng.standard_normal(s).astype(np.float32) for s in [(2, 3, 5, 4)] * 3 + [(2, 3, 4)]]
    names = ["q", "k", "v", "x"]
    data, proto = _export(Mixed(), as_dtorch(example), input_names=names,
                          dynamic_axes={n: {0: "batch"} for n in names})
    fresh = [rng.standard_normal((4,) + a.shape[1:]).astype(np.float32) for a in example]
    with torch.no_grad():
        theirs = outputs_numpy(forward(torch, *[torch.from_numpy(a) for a in fresh]))
    for outputs in _run_both(data, proto, dict(zip(names, fresh))):
        for got, want in zip(outputs, theirs):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_word_language_model_with_given_states_and_tied_weights():
    import torch

    def build(t):
        class RNNModel(t.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = t.nn.Embedding(40, 8)
                self.rnn = t.nn.LSTM(8, 8, 2, dropout=0.2)
                self.decoder = t.nn.Linear(8, 40)
                self.decoder.weight = self.encoder.weight

            def forward(self, tokens, hidden):
                output, hidden = self.rnn(self.encoder(tokens), hidden)
                return self.decoder(output).view(-1, 40), hidden

        return RNNModel()

    dtorch.manual_seed(0)
    model = build(dtorch).eval()
    twin = build(torch).eval()
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    example = (dtorch.randint(0, 40, (5, 2)), (dtorch.zeros(2, 2, 8), dtorch.zeros(2, 2, 8)))
    names = ["tokens", "h0", "c0"]
    data, proto = _export(model, example, input_names=names,
                          dynamic_axes={"tokens": {0: "time", 1: "batch"}, "h0": {1: "batch"}, "c0": {1: "batch"}})
    rng = np.random.default_rng(3)
    fresh = [rng.integers(0, 40, (7, 3)), rng.standard_normal((2, 3, 8)).astype(np.float32),
             rng.standard_normal((2, 3, 8)).astype(np.float32)]
    with torch.no_grad():
        tokens, h0, c0 = (torch.from_numpy(a) for a in fresh)
        theirs = outputs_numpy(twin(tokens, (h0, c0)))
    for outputs in _run_both(data, proto, dict(zip(names, fresh))):
        for got, want in zip(outputs, theirs):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_custom_autograd_function_is_refused():
    with pytest.raises(RuntimeError, match="onnx.export: the custom autograd.Function .*Clip"):
        dtorch.onnx.export(UsesClip(), (dtorch.ones(2),), io.BytesIO())


def test_more_layers_against_pytorch():
    import torch

    def build(t):
        class Mixed(t.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = t.nn.Conv1d(3, 4, 3, padding=1)
                self.pool = t.nn.AvgPool1d(2)
                self.norm = t.nn.LayerNorm(4, elementwise_affine=False)
                self.act = t.nn.GELU(approximate="tanh")
                self.out = t.nn.Linear(8, 2)

            def forward(self, x):
                y = self.pool(self.conv(x))  # (N, 4, L/2)
                y = self.act(self.norm(y.transpose(1, 2)))  # (N, L/2, 4)
                first, second = y.chunk(2, dim=1)
                z = t.cat([first.mean(dim=1), second.amax(dim=1)], dim=-1)  # (N, 8)
                return t.stack([self.out(z), -self.out(z)], dim=1).permute(2, 0, 1).sigmoid()

        return Mixed()

    dtorch.manual_seed(0)
    model = build(dtorch).eval()
    twin = build(torch).eval()
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    data, proto = _export(model, (dtorch.randn(2, 3, 8),), input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    fresh = np.random.default_rng(5).standard_normal((5, 3, 8)).astype(np.float32)
    with torch.no_grad():
        theirs = twin(torch.from_numpy(fresh)).numpy()
    for outputs in _run_both(data, proto, {"x": fresh}):
        np.testing.assert_allclose(outputs[0], theirs, rtol=1e-4, atol=1e-5)


def test_factories_sized_by_the_input_stay_dynamic():
    from export_models import StatesFromFactories

    model = StatesFromFactories().eval()
    data, proto = _export(model, (dtorch.randn(1, 3, 4),), input_names=["x"],
                          dynamic_axes={"x": {0: "batch", 1: "time"}})
    x = np.random.default_rng(0).standard_normal((4, 7, 4)).astype(np.float32)
    expected = model(dtorch.tensor(x)).detach().numpy()
    for outputs in _run_both(data, proto, {"x": x}):
        np.testing.assert_allclose(outputs[0], expected, rtol=1e-4, atol=1e-5)


def test_multihead_attention_with_padding_mask_and_weights_against_pytorch():
    import torch

    dtorch.manual_seed(0)
    model = dtorch.nn.MultiheadAttention(8, 2).eval()
    twin = torch.nn.MultiheadAttention(8, 2).eval()
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    memory = dtorch.randn(6, 2, 8)  # passed as key and value: each position is an input of its own
    padding = dtorch.tensor([[False] * 5 + [True], [False] * 6])
    names = ["query", "key", "value", "padding"]
    data, proto = _export(model, (dtorch.randn(5, 2, 8), memory, memory, padding), input_names=names,
                          output_names=["out", "weights"],
                          dynamic_axes={"query": {0: "L", 1: "N"}, "key": {0: "S", 1: "N"}, "value": {0: "S", 1: "N"},
                                        "padding": {0: "N", 1: "S"}})
    rng = np.random.default_rng(0)
    query, kv = rng.standard_normal((4, 3, 8)).astype(np.float32), rng.standard_normal((7, 3, 8)).astype(np.float32)
    pad = np.zeros((3, 7), bool)
    pad[0, -2:] = True
    with torch.no_grad():
        theirs = outputs_numpy(twin(*[torch.from_numpy(a) for a in (query, kv, kv)],
                                    key_padding_mask=torch.from_numpy(pad)))
    for outputs in _run_both(data, proto, dict(zip(names, (query, kv, kv, pad)))):
        for got, want in zip(outputs, theirs):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_transformer_language_model_tutorial_at_other_lengths():
    import torch
    from export_models import build_transformer_lm, causal_mask

    dtorch.manual_seed(0)
    model = build_transformer_lm(dtorch).eval()
    twin = build_transformer_lm(torch).eval()
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    names = ["src", "src_mask"]
    example = (dtorch.randint(0, 30, (5, 2)), dtorch.tensor(causal_mask(5)))
    data, proto = _export(model, example, input_names=names,
                          dynamic_axes={"src": {0: "length", 1: "batch"}, "src_mask": {0: "length", 1: "length"}})
    fresh = (np.random.default_rng(0).integers(0, 30, (8, 3)), causal_mask(8))
    traced = dtorch.jit.trace(model, example)
    with torch.no_grad():
        theirs = twin(*[torch.from_numpy(a) for a in fresh]).numpy()
    np.testing.assert_allclose(traced(*as_dtorch(fresh)).detach().numpy(), theirs, rtol=1e-4, atol=1e-5)
    for outputs in _run_both(data, proto, dict(zip(names, fresh))):
        np.testing.assert_allclose(outputs[0], theirs, rtol=1e-4, atol=1e-5)
