"""``dtorch.jit.script``: accepted for forwards without data-dependent control flow, refused loudly otherwise."""

import io

import numpy as np
import pytest

import dtorch
from dtorch import nn
from export_models import as_dtorch, dtorch_model, make_inputs, outputs_numpy

MODELS = ["mlp", "cnn", "lstm", "transformer"]


@pytest.mark.parametrize("name", MODELS)
def test_script_runs_the_tutorial_models_and_saves_their_graph(name):
    model = dtorch_model(name)
    scripted = dtorch.jit.script(model)
    x = as_dtorch(make_inputs(name, 2, length=4, seed=3))
    for got, want in zip(outputs_numpy(scripted(*x)), outputs_numpy(model(*x))):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert list(scripted.state_dict()) == list(model.state_dict())
    assert "def forward" in scripted.code
    buffer = io.BytesIO()
    dtorch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = dtorch.jit.load(buffer)
    fresh = as_dtorch(make_inputs(name, 3, length=5, seed=5))
    for got, want in zip(outputs_numpy(loaded(*fresh)), outputs_numpy(model(*fresh))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        y = self.fc(x)
        if y.sum() > 0:
            return y
        return -y


class Looping(nn.Module):
    def forward(self, x):
        total = x * 0
        for row in x:
            total = total + row
        return total


class ReadsItem(nn.Module):
    def forward(self, x):
        scale = x.abs().max().item()
        return x / scale


class UsesShapesAndFlags(nn.Module):
    """Branches on shapes, on self.training and on None: not data-dependent, so script accepts it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x, bias=None):
        if x.dim() == 3:
            x = x.flatten(0, 1)
        if self.training:
            x = x * 1.0
        out = self.fc(x)
        if bias is not None:
            out = out + bias
        return self.helper(out)

    @dtorch.jit.ignore
    def debug(self, x):
        if x.sum() > 0:  # ignored by script
            print(x)

    def helper(self, y):
        return y.relu()


class CallsDataDependentHelper(nn.Module):
    def forward(self, x):
        return self.helper(x)

    def helper(self, x):
        while x.max() > 1:
            x = x / 2
        return x


@pytest.mark.parametrize("cls, what", [
    (Gated, "an if tests tensor values"),
    (Looping, "iterates over a tensor"),
    (ReadsItem, r"\.item\(\)"),
    (CallsDataDependentHelper, "a while loop"),
])
def test_script_refuses_data_dependent_control_flow_and_points_to_trace(cls, what):
    with pytest.raises(RuntimeError, match=what) as info:
        dtorch.jit.script(cls())
    assert "dtorch.jit.trace" in str(info.value) and "line" in str(info.value)


def test_script_accepts_shape_and_flag_branches_and_ignored_methods():
    module = UsesShapesAndFlags().eval()
    scripted = dtorch.jit.script(module)
    x = dtorch.randn(2, 4)
    np.testing.assert_allclose(scripted(x).detach().numpy(), module(x).detach().numpy())


def test_is_scripting_is_true_inside_a_scripted_forward():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(dtorch.jit.is_scripting())
            return x + 1

    scripted = dtorch.jit.script(Probe())
    scripted(dtorch.ones(1))
    scripted(dtorch.ones(1))
    assert seen == [True, True] and not dtorch.jit.is_scripting()


def test_scripted_module_shares_parameters_and_follows_train_eval():
    model = dtorch_model("mlp").train()
    scripted = dtorch.jit.script(model)
    assert [p is q for p, q in zip(scripted.parameters(), model.parameters())] == [True] * 4
    scripted.eval()
    assert not model.training and not model.drop.training
    with pytest.raises(RuntimeError, match="has not run yet"):
        dtorch.jit.save(dtorch.jit.script(dtorch_model("mlp")), io.BytesIO())


def test_unused_and_ignore_decorators_mark_functions():
    @dtorch.jit.unused
    def legacy(x):
        return x

    @dtorch.jit.ignore(drop=True)
    def dropped(x):
        return x

    assert legacy._dtorch_jit_unused and dropped._dtorch_jit_ignore and dropped(3) == 3


class Comprehension(nn.Module):
    def forward(self, x):
        return dtorch.stack([row * 2 for row in x])


class ShortCircuit(nn.Module):
    def forward(self, x, y):
        return (x.any() and y) or x


def test_script_refuses_comprehensions_and_boolean_operators_on_tensors():
    with pytest.raises(RuntimeError, match="comprehension iterates over a tensor"):
        dtorch.jit.script(Comprehension())
    with pytest.raises(RuntimeError, match="and`/`or"):
        dtorch.jit.script(ShortCircuit())


def test_freeze_optimize_for_inference_and_fork():
    model = dtorch_model("mlp")
    frozen = dtorch.jit.optimize_for_inference(dtorch.jit.script(model))
    assert not frozen.training
    with pytest.raises(RuntimeError, match="eval mode"):
        dtorch.jit.freeze(dtorch.jit.script(dtorch_model("mlp").train()))
    with pytest.raises(RuntimeError, match="ScriptModule"):
        dtorch.jit.freeze(model)
    assert dtorch.jit.wait(dtorch.jit.fork(lambda x: x * 2, 3)) == 6
