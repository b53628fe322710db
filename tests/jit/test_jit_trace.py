"""``dtorch.jit.trace``/``save``/``load``: the tutorial models traced at one size, replayed at others, saved and
loaded in a fresh process that does not have their classes; tracer warnings; the traced module's Module API."""

import io
import json
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import dtorch
from dtorch import nn
from export_models import StatesFromFactories, as_dtorch, dtorch_model, make_inputs, outputs_numpy, torch_twin

MODELS = ["mlp", "cnn", "lstm", "transformer"]


def _close(actual, expected, atol=1e-5):
    actual, expected = outputs_numpy(actual), outputs_numpy(expected)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=atol)


@pytest.mark.parametrize("name", MODELS)
def test_traced_model_replays_at_other_sizes_like_the_model_and_pytorch(name):
    model = dtorch_model(name)
    traced = dtorch.jit.trace(model, as_dtorch(make_inputs(name, 1, length=5)))
    fresh = make_inputs(name, 3, length=7, seed=4)  # another batch size and sequence length
    expected = model(*as_dtorch(fresh))
    _close(traced(*as_dtorch(fresh)), expected)
    import torch

    with torch.no_grad():
        _close(traced(*as_dtorch(fresh)), torch_twin(name, model)(*[torch.from_numpy(a) for a in fresh]))


def test_layers_are_recorded_as_one_node_each():
    ops = {name: [n["op"] for n in dtorch.jit.trace(dtorch_model(name),
                                                   as_dtorch(make_inputs(name, 2))).graph.nodes]
           for name in ("lstm", "transformer")}
    assert ops["lstm"].count("nn.LSTM") == 1
    assert ops["transformer"].count("nn.MultiheadAttention") == 1


def test_saved_archive_is_a_zip_of_json_graph_and_npy_weights(tmp_path):
    model = dtorch_model("mlp")
    path = tmp_path / "mlp.pt"
    dtorch.jit.save(dtorch.jit.trace(model, as_dtorch(make_inputs("mlp", 2))), str(path))
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        graph = json.loads(archive.read("model/graph.json"))
        meta = json.loads(archive.read("model/module.json"))
    assert not [n for n in names if n.endswith((".pkl", ".pickle"))]
    assert all(n.endswith((".json", ".npy")) for n in names)
    assert sorted(graph["parameters"]) == sorted(name for name, _ in model.named_parameters())
    assert {n["op"] for n in graph["nodes"]} >= {"Reshape", "Linear", "Tanh"}
    assert meta["format"] == "dtorch.jit"


_FRESH_PROCESS = """
import sys, numpy as np, dtorch
folder = sys.argv[1]
for name in sys.argv[2:]:
    module = dtorch.jit.load(f"{folder}/{name}.pt")
    data = np.load(f"{folder}/{name}_inputs.npz")
    inputs = [dtorch.tensor(data[f"arr_{i}"]) for i in range(len(data.files))]
    output = module(*inputs)
    output = output if isinstance(output, tuple) else (output,)
    np.savez(f"{folder}/{name}_outputs.npz", *[np.array(o.detach()) for o in output])
    assert "export_models" not in sys.modules
"""


def test_saved_models_load_in_a_fresh_process_without_their_classes(tmp_path):
    expected = {}
    for name in MODELS:
        model = dtorch_model(name)
        traced = dtorch.jit.trace(model, as_dtorch(make_inputs(name, 2, length=4)))
        dtorch.jit.save(traced, str(tmp_path / f"{name}.pt"))
        fresh = make_inputs(name, 3, length=6, seed=7)
        np.savez(tmp_path / f"{name}_inputs.npz", *fresh)
        expected[name] = outputs_numpy(model(*as_dtorch(fresh)))
    repository = os.path.dirname(os.path.dirname(os.path.abspath(dtorch.__file__)))
    env = dict(os.environ, PYTHONPATH=repository)
    result = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, str(tmp_path), *MODELS], cwd=str(tmp_path),
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in MODELS:
        data = np.load(tmp_path / f"{name}_outputs.npz")
        got = [data[f"arr_{i}"] for i in range(len(data.files))]
        assert len(got) == len(expected[name])
        for g, e in zip(got, expected[name]):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


def test_loaded_module_is_a_module_that_fine_tunes_like_the_original():
    model = dtorch_model("cnn")
    buffer = io.BytesIO()
    dtorch.jit.save(dtorch.jit.trace(model, as_dtorch(make_inputs("cnn", 2))), buffer)
    buffer.seek(0)
    loaded = dtorch.jit.load(buffer)
    assert list(loaded.state_dict()) == list(model.state_dict())
    assert [n for n, _ in loaded.named_parameters()] == [n for n, _ in model.named_parameters()]
    x = as_dtorch(make_inputs("cnn", 3, seed=2))
    target = dtorch.tensor([1, 2, 3])
    nn.functional.nll_loss(model(*x), target).backward()
    nn.functional.nll_loss(loaded(*x), target).backward()
    for (name, p), (_, q) in zip(model.named_parameters(), loaded.named_parameters()):
        np.testing.assert_allclose(np.array(q.grad), np.array(p.grad), rtol=1e-4, atol=1e-6, err_msg=name)
    optimizer = dtorch.optim.SGD(loaded.parameters(), lr=0.1)
    before = np.array(loaded(*x).detach())
    optimizer.step()
    assert not np.allclose(np.array(loaded(*x).detach()), before)
    loaded.load_state_dict(model.state_dict())  # the state dict moves between the two
    _close(loaded(*x), model(*x))


def test_to_eval_and_graph_code_of_a_traced_module():
    model = dtorch_model("mlp")
    traced = dtorch.jit.trace(model, as_dtorch(make_inputs("mlp", 2)))
    assert "Linear" in str(traced.graph) and "def forward(self, x)" in traced.code
    assert "self.fc1.weight" in traced.code
    assert traced.eval() is traced and not traced.training
    doubled = traced.to(dtorch.float64)
    x = dtorch.tensor(make_inputs("mlp", 2)[0]).double()
    assert doubled(x).dtype == dtorch.float64
    model.double()
    _close(doubled(x), model(x), atol=1e-10)


def test_traced_function_and_symbolic_view():
    def flatten_and_scale(x):
        return x.view(x.size(0), -1) * 2.0

    traced = dtorch.jit.trace(flatten_and_scale, dtorch.ones(1, 2, 3))
    out = traced(dtorch.ones(3, 2, 3))
    assert tuple(out.shape) == (3, 6)


def test_tracer_warns_where_python_reads_traced_values():
    def branches(x):
        if x.sum() > 0:
            return x * 2
        return x

    def reads_item(x):
        return x * x.max().item()

    def iterates(x):
        return sum(row for row in x)

    for function in (branches, reads_item, iterates):
        with pytest.warns(dtorch.jit.TracerWarning):
            dtorch.jit.trace(function, dtorch.ones(2, 3), check_trace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dtorch.jit.trace(lambda x: x.relu() + 1, dtorch.ones(2, 3))


def test_check_inputs_report_a_trace_that_does_not_generalise():
    def branches(x):
        return x * 2 if x.sum() > 0 else -x

    with pytest.warns(dtorch.jit.TracerWarning, match="does not match"):
        dtorch.jit.trace(branches, dtorch.ones(2), check_inputs=[(-dtorch.ones(2),)])


def test_strict_refuses_list_outputs():
    with pytest.raises(RuntimeError, match="strict=False"):
        dtorch.jit.trace(lambda x: [x, x + 1], dtorch.ones(2))
    traced = dtorch.jit.trace(lambda x: [x, x + 1], dtorch.ones(2), strict=False)
    assert isinstance(traced(dtorch.ones(2)), list)


def test_custom_autograd_function_is_refused_clearly():
    class Cube(dtorch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            return grad

    class UsesCube(nn.Module):
        def forward(self, x):
            return Cube.apply(x) + 1

    with pytest.raises(RuntimeError, match="custom autograd.Function .*Cube.* cannot be recorded"):
        dtorch.jit.trace(UsesCube(), dtorch.ones(2))
    assert Cube.apply(dtorch.ones(2)).tolist() == [1.0, 1.0]  # the patches are gone after the failed trace
    assert not dtorch.jit.is_tracing()
    from dtorch.autograd import function

    assert function.capture is None
    assert type(dtorch.ones(2, 3).size(0)) is int and type(dtorch.ones(2).shape[0]) is int


def test_is_tracing_inside_a_trace():
    seen = []

    def probe(x):
        seen.append(dtorch.jit.is_tracing())
        return x + 1

    dtorch.jit.trace(probe, dtorch.ones(1), check_trace=False)
    assert seen == [True] and not dtorch.jit.is_tracing()


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "weights.pt"
    dtorch.save({"w": dtorch.ones(2)}, str(path))
    with pytest.raises(RuntimeError, match="not a dtorch"):
        dtorch.jit.load(str(path))


def test_recurrent_layers_replay_at_other_sequence_lengths():
    import torch

    for name in ("GRU", "RNN", "LSTM"):
        dtorch.manual_seed(1)
        layer = getattr(nn, name)(5, 6, num_layers=2, bidirectional=True).eval()
        twin = getattr(torch.nn, name)(5, 6, num_layers=2, bidirectional=True).eval()
        twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in layer.state_dict().items()})
        traced = dtorch.jit.trace(layer, dtorch.randn(3, 1, 5))
        x = np.random.default_rng(2).standard_normal((7, 4, 5)).astype(np.float32)
        with torch.no_grad():
            _close(traced(dtorch.tensor(x)), twin(torch.from_numpy(x)))


def test_training_mode_trace_draws_new_dropout_masks_and_warns_about_buffers():
    dtorch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5), nn.Linear(64, 2)).train()
    traced = dtorch.jit.trace(model, dtorch.randn(1, 4), check_trace=False)
    x = dtorch.randn(3, 4)
    first, second = traced(x), traced(x)
    assert tuple(first.shape) == (3, 2) and not np.allclose(first.detach().numpy(), second.detach().numpy())
    with pytest.warns(dtorch.jit.TracerWarning, match="running_mean"):
        dtorch.jit.trace(nn.BatchNorm1d(4).train(), dtorch.randn(5, 4), check_trace=False)


def test_tracing_the_forward_method_names_parameters_like_the_module():
    model = dtorch_model("mlp")
    traced = dtorch.jit.trace(model.forward, as_dtorch(make_inputs("mlp", 2)))
    assert [n for n, _ in traced.named_parameters()] == [n for n, _ in model.named_parameters()]


def test_tied_weights_keep_both_names_and_stay_tied_after_loading():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Embedding(10, 4)
            self.decoder = nn.Linear(4, 10)
            self.decoder.weight = self.encoder.weight

        def forward(self, tokens):
            return self.decoder(self.encoder(tokens))

    model = Tied()
    buffer = io.BytesIO()
    dtorch.jit.save(dtorch.jit.trace(model, dtorch.tensor([[1, 2]])), buffer)
    buffer.seek(0)
    loaded = dtorch.jit.load(buffer)
    assert list(loaded.state_dict()) == list(model.state_dict())
    assert loaded.encoder.weight is loaded.decoder.weight
    tokens = dtorch.tensor([[3, 4, 5]])
    _close(loaded(tokens), model(tokens))
    program = dtorch.export.load(_saved_program(model, tokens))
    assert program.state_dict["encoder.weight"] is program.state_dict["decoder.weight"]


def _saved_program(model, tokens):
    buffer = io.BytesIO()
    dtorch.export.save(dtorch.export.export(model, (tokens,)), buffer)
    buffer.seek(0)
    return buffer


def test_extra_files_map_location_and_the_module_hierarchy():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2))).eval()
    traced = dtorch.jit.trace(model, example_kwarg_inputs={"input": dtorch.randn(1, 3)})
    assert "(1): ReLU(original_name=ReLU)" in repr(traced)
    buffer = io.BytesIO()
    dtorch.jit.save(traced, buffer, _extra_files={"notes.txt": "trained on digits"})
    buffer.seek(0)
    extra = {"notes.txt": ""}
    loaded = dtorch.jit.load(buffer, map_location="cpu", _extra_files=extra)
    assert extra["notes.txt"] == b"trained on digits"
    x = dtorch.randn(2, 3)
    _close(loaded(x), model(x))
    with pytest.raises(RuntimeError, match="expected 1 argument"):
        loaded(x, x)


def test_check_trace_catches_values_baked_in_as_constants():
    def uses_an_untraced_result(x):  # isclose is computed outside the recorded ops: its result is a constant
        return x + dtorch.isclose(x, dtorch.zeros_like(x)).float()

    with pytest.warns(dtorch.jit.TracerWarning, match="constant"):
        dtorch.jit.trace(uses_an_untraced_result, dtorch.tensor([0.0, 1.0, 2.0]))


def test_factories_sized_by_the_input_follow_it_on_replay():
    model = StatesFromFactories().eval()
    traced = dtorch.jit.trace(model, dtorch.randn(1, 3, 4))
    assert [n["op"] for n in traced.graph.nodes].count("nn.factory") == 4
    x = dtorch.randn(4, 7, 4)
    _close(traced(x), model(x))
    zeros = dtorch.jit.trace(lambda x: dtorch.zeros(2, 3) + x, dtorch.ones(2, 3))  # fixed sizes: a constant
    assert [n["op"] for n in zeros.graph.nodes] == ["Add"]


def test_a_tensor_passed_twice_gives_two_inputs():
    traced = dtorch.jit.trace(lambda a, b: a * 2 + b, (dtorch.ones(2),) * 2)
    assert len(traced.graph.inputs) == 2
    assert traced(dtorch.ones(2), dtorch.zeros(2)).tolist() == [2.0, 2.0]


def test_a_graph_naming_an_unknown_op_is_refused_on_load():
    buffer = io.BytesIO()
    dtorch.jit.save(dtorch.jit.trace(lambda x: x.relu(), dtorch.ones(2)), buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source:
        files = {name: source.read(name) for name in source.namelist()}
    graph = json.loads(files["model/graph.json"])
    graph["nodes"][0]["op"] = "NoSuchOp"
    files["model/graph.json"] = json.dumps(graph).encode()
    edited = io.BytesIO()
    with zipfile.ZipFile(edited, "w") as target:
        for name, data in files.items():
            target.writestr(name, data)
    edited.seek(0)
    with pytest.raises(RuntimeError, match="'NoSuchOp'"):
        dtorch.jit.load(edited)
