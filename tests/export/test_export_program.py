"""``dtorch.export``: ExportedProgram round trips, its signature and state dict, and dynamic shapes."""

import io
import os
import sys

import numpy as np
import pytest

import dtorch
from dtorch.export import Dim, export

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jit"))
from export_models import UsesClip, as_dtorch, dtorch_model, make_inputs, outputs_numpy, torch_twin  # noqa: E402


def _close(actual, expected):
    for a, e in zip(outputs_numpy(actual), outputs_numpy(expected)):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp", "cnn", "lstm", "transformer"])
def test_export_save_load_round_trip_matches_the_model_and_pytorch(name, tmp_path):
    model = dtorch_model(name)
    example = as_dtorch(make_inputs(name, 2, length=4))
    batch = Dim("batch", min=1, max=16)
    if name == "transformer":
        sequence = Dim("sequence")
        dynamic = ({0: batch, 1: sequence}, {0: sequence, 1: sequence})
    elif name == "lstm":
        dynamic = {"tokens": {0: batch, 1: Dim("sequence")}}
    else:
        dynamic = ({0: batch},)
    program = export(model, example, dynamic_shapes=dynamic)
    path = tmp_path / f"{name}.pt2"
    dtorch.export.save(program, str(path))
    loaded = dtorch.export.load(str(path))
    fresh = make_inputs(name, 3, length=6, seed=9)
    _close(loaded.module()(*as_dtorch(fresh)), model(*as_dtorch(fresh)))
    import torch

    with torch.no_grad():
        _close(loaded.module()(*as_dtorch(fresh)), torch_twin(name, model)(*[torch.from_numpy(a) for a in fresh]))


def test_program_signature_state_dict_and_graph():
    model = dtorch_model("cnn")
    program = export(model, as_dtorch(make_inputs("cnn", 2)))
    signature = program.graph_signature
    assert signature.parameters == [n for n, _ in model.named_parameters()]
    assert signature.buffers == [n for n, _ in model.named_buffers()]
    assert len(signature.user_inputs) == 1 and len(signature.user_outputs) == 1
    assert set(program.state_dict) == set(model.state_dict())
    assert "Conv2d" in str(program.graph)
    decomposed = program.run_decompositions()
    x = as_dtorch(make_inputs("cnn", 2, seed=1))
    _close(decomposed.module()(*x), model(*x))
    with pytest.raises(RuntimeError, match=r"module\(\)"):
        program(*x)


def test_static_sizes_are_checked_and_dynamic_ones_bounded():
    model = dtorch_model("mlp")
    static = export(model, (dtorch.randn(2, 3, 4),))
    with pytest.raises(RuntimeError, match=r"shape\[0\] to be equal to 2, but got 3"):
        static.module()(dtorch.randn(3, 3, 4))
    dynamic = export(model, (dtorch.randn(2, 3, 4),), dynamic_shapes={"x": {0: Dim("batch", max=4)}})
    assert tuple(dynamic.module()(dtorch.randn(4, 3, 4)).shape) == (4, 5)
    with pytest.raises(RuntimeError, match=r"in range \[0, 4\]"):
        dynamic.module()(dtorch.randn(5, 3, 4))
    with pytest.raises(ValueError, match="not inputs"):
        export(model, (dtorch.randn(2, 3, 4),), dynamic_shapes={"y": {0: Dim("batch")}})


def test_export_to_a_buffer_and_argument_checks():
    buffer = io.BytesIO()
    dtorch.export.save(export(dtorch.nn.Linear(3, 2), (dtorch.ones(1, 3),)), buffer)
    assert dtorch.export.load(buffer).module()(dtorch.ones(1, 3)).shape == (1, 2)
    with pytest.raises(ValueError, match="tuple"):
        export(dtorch.nn.Linear(3, 2), dtorch.ones(1, 3))
    with pytest.raises(RuntimeError, match="dtorch.jit"):
        dtorch.export.load(io.BytesIO(b"not a zip"))


def test_custom_autograd_function_is_refused():
    with pytest.raises(RuntimeError, match="export: the custom autograd.Function .*Clip"):
        export(UsesClip(), (dtorch.ones(2),))
