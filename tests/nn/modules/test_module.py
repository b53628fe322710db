"""``Module`` and the containers against PyTorch: registration, iteration, modes, conversion, state_dict,
hooks and repr."""

import copy
import re
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn, optim


def _both(build):
    """The same model built with torch.nn and dtorch.nn (``build`` takes the nn module)."""
    return build(torch.nn), build(nn)


def _same_error(call_torch, call_dtorch, error_type):
    with pytest.raises(error_type) as expected:
        call_torch()
    with pytest.raises(error_type) as actual:
        call_dtorch()
    assert str(actual.value) == re.sub(r"\btorch\b", "dtorch", str(expected.value))


def _net(lib):
    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.conv = lib.Conv2d(3, 4, 3, padding=1)
            self.bn = lib.BatchNorm2d(4)
            self.act = lib.ReLU()

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.features = lib.Sequential(Block(), lib.MaxPool2d(2), lib.Flatten())
            self.heads = lib.ModuleDict({"cls": lib.Linear(64, 10), "box": lib.Linear(64, 4, bias=False)})
            self.extra = lib.ModuleList([lib.Linear(4, 4) for _ in range(3)] + [lib.Dropout(0.1)])
            self.scale = lib.Parameter(lib.init.ones_(torch.empty(1) if lib is torch.nn else dtorch.empty(1)))
            self.register_buffer("steps", (torch if lib is torch.nn else dtorch).zeros(1))
            self.register_buffer("cache", (torch if lib is torch.nn else dtorch).zeros(2), persistent=False)

        def forward(self, x):
            h = self.features(x)
            return self.heads["cls"](h) * self.scale

    return Net()


# ---- registration ---------------------------------------------------------------------------------------------------


def test_registration_and_named_members_match_torch():
    torch_net, dtorch_net = _both(_net)
    for method in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(dtorch_net, method)()] == [n for n, _ in getattr(torch_net, method)()], method
    for kwargs in ({"prefix": "model"}, {"recurse": False}):
        for method in ("named_parameters", "named_buffers"):
            assert [n for n, _ in getattr(dtorch_net, method)(**kwargs)] == \
                [n for n, _ in getattr(torch_net, method)(**kwargs)]
    assert [n for n, _ in dtorch_net.named_modules(prefix="m")] == [n for n, _ in torch_net.named_modules(prefix="m")]
    assert len(list(dtorch_net.parameters())) == len(list(torch_net.parameters()))
    assert len(list(dtorch_net.buffers())) == len(list(torch_net.buffers()))
    assert len(list(dtorch_net.children())) == len(list(torch_net.children()))
    assert len(list(dtorch_net.modules())) == len(list(torch_net.modules()))
    assert list(dtorch_net.state_dict()) == list(torch_net.state_dict())
    assert "cache" not in dtorch_net.state_dict()


def test_shared_members_and_remove_duplicate():
    def build(lib):
        shared = lib.Linear(2, 2)
        model = lib.Sequential(shared, lib.ReLU(), shared)
        model.tied = lib.Linear(2, 2)
        model.tied.weight = shared.weight
        return model

    torch_model, dtorch_model = _both(build)
    for kwargs in ({}, {"remove_duplicate": False}):
        assert [n for n, _ in dtorch_model.named_parameters(**kwargs)] == \
            [n for n, _ in torch_model.named_parameters(**kwargs)]
        assert [n for n, _ in dtorch_model.named_modules(**kwargs)] == \
            [n for n, _ in torch_model.named_modules(**kwargs)]
        assert [type(m).__name__ for m in dtorch_model.modules(**kwargs)] == \
            [type(m).__name__ for m in torch_model.modules(**kwargs)]
    assert list(dtorch_model.state_dict()) == list(torch_model.state_dict())
    assert len(list(dtorch_model.parameters())) == 3


def test_setattr_rules_and_errors_match_torch():
    def check(action):
        torch_module, dtorch_module = torch.nn.Linear(2, 2), nn.Linear(2, 2)
        _same_error(lambda: action(torch_module, torch), lambda: action(dtorch_module, dtorch), (TypeError, KeyError))

    check(lambda m, lib: setattr(m, "weight", lib.zeros(2, 2)))
    check(lambda m, lib: m.register_parameter("w", lib.zeros(2)))
    check(lambda m, lib: m.register_parameter("a.b", None))
    check(lambda m, lib: m.register_buffer("weight", lib.zeros(2)))
    check(lambda m, lib: m.register_buffer("x", 3))
    check(lambda m, lib: m.add_module("in_features", None))

    m = nn.Module()
    m.p = nn.Parameter(dtorch.ones(2))
    m.child = nn.Linear(2, 2)
    m.register_buffer("b", dtorch.zeros(1))
    m.b = dtorch.ones(1)  # a Tensor assigned to a buffer name stays a buffer
    assert "b" in m._buffers and float(m.b.item()) == 1.0
    m.p = None
    assert m.p is None and "p" in m._parameters
    m.child = None
    assert m.child is None and list(m.children()) == []
    m.child = nn.Linear(1, 1)
    del m.child
    assert not hasattr(m, "child")
    m.plain = 3
    assert m.plain == 3 and "plain" in m.__dict__
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'missing'"):
        m.missing
    # re-assigning a name as another kind moves it
    m.x = nn.ReLU()
    m.x = nn.Parameter(dtorch.zeros(1))
    assert "x" in m._parameters and "x" not in m._modules
    check(lambda m, lib: setattr(m, "weight", lib.nn.ReLU()))
    check(lambda m, lib: setattr(m, "child", lib.nn.ReLU()) or setattr(m, "child", 3))

    class Early(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="cannot assign module before Module.__init__\\(\\) call"):
        Early()


def test_get_submodule_parameter_buffer():
    net = _net(nn)
    assert net.get_submodule("features.0.conv") is net.features[0].conv
    assert net.get_parameter("heads.cls.weight") is net.heads["cls"].weight
    assert net.get_buffer("features.0.bn.running_mean") is net.features[0].bn.running_mean
    with pytest.raises(AttributeError):
        net.get_submodule("features.7")


# ---- modes, gradients, conversion ---------------------------------------------------------------------------------


def test_train_eval_requires_grad_zero_grad():
    net = _net(nn)
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")
    net.requires_grad_(False)
    assert all(not p.requires_grad for p in net.parameters())
    net.requires_grad_()
    out = net(dtorch.randn(2, 3, 8, 8))
    out.sum().backward()
    assert all(p.grad is not None for p in net.heads["cls"].parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is None or not np.any(p.grad.numpy()) for p in net.parameters())
    assert net.heads["cls"].weight.grad is not None
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_apply_visits_children_first():
    torch_net, dtorch_net = _both(_net)
    seen_torch, seen_dtorch = [], []
    torch_net.apply(lambda m: seen_torch.append(type(m).__name__))
    assert dtorch_net.apply(lambda m: seen_dtorch.append(type(m).__name__)) is dtorch_net
    assert seen_dtorch == seen_torch


def test_to_converts_parameters_in_place():
    net = _net(nn)
    params = list(net.parameters())
    optimizer_view = {id(p) for p in params}
    net(dtorch.randn(2, 3, 8, 8)).sum().backward()
    assert net.double() is net
    assert {id(p) for p in net.parameters()} == optimizer_view
    assert all(p.dtype == dtorch.float64 for p in net.parameters())
    assert all(p.grad is None or p.grad.dtype == dtorch.float64 for p in net.parameters())
    bn = net.features[0].bn
    assert bn.running_mean.dtype == dtorch.float64 and bn.num_batches_tracked.dtype == dtorch.int64
    net.to(dtorch.float32)
    assert all(p.dtype == dtorch.float32 for p in net.parameters())
    net.to("cpu", dtorch.float64).to(device="cpu", dtype=dtorch.float32).cpu().float()
    net.half()
    assert net.heads["cls"].weight.dtype == dtorch.float16
    net.to(dtorch.zeros(1, dtype=dtorch.float64))
    assert net.heads["cls"].weight.dtype == dtorch.float64
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point or complex dtypes"):
        net.to(dtorch.int64)


def test_to_keeps_optimizer_references():
    model = nn.Linear(3, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    model.double()
    x = dtorch.randn(4, 3, dtype=dtorch.float64)
    before = model.weight.detach().clone()
    model(x).sum().backward()
    opt.step()
    assert opt.param_groups[0]["params"][0] is model.weight
    assert not bool((model.weight == before).all())


def test_deepcopy_and_pickle():
    net = _net(nn)
    clone = copy.deepcopy(net)
    assert clone.heads["cls"].weight is not net.heads["cls"].weight
    np.testing.assert_array_equal(clone.heads["cls"].weight.detach().numpy(), net.heads["cls"].weight.detach().numpy())
    assert isinstance(clone.heads["cls"].weight, nn.Parameter)
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 2))
    restored = pickle.loads(pickle.dumps(net))
    assert list(restored.state_dict()) == list(net.state_dict())
    x = dtorch.randn(2, 3, 8, 8)
    net.eval(), restored.eval()
    np.testing.assert_allclose(restored(x).detach().numpy(), net(x).detach().numpy())


# ---- state dict ------------------------------------------------------------------------------------------------------


def test_state_dict_shares_memory_and_detaches():
    fc = nn.Linear(2, 2)
    state = fc.state_dict()
    assert not state["weight"].requires_grad
    state["weight"]._array[...] = 7
    assert float(fc.weight[0, 0].item()) == 7
    assert fc.state_dict(keep_vars=True)["weight"] is fc.weight
    assert list(fc.state_dict(prefix="fc.")) == ["fc.weight", "fc.bias"]
    assert fc.state_dict()._metadata[""] == {"version": 1}


def test_load_state_dict_copies_in_place():
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    weight = target.weight
    result = target.load_state_dict(source.state_dict())
    assert repr(result) == repr(torch.nn.Linear(1, 1).load_state_dict(torch.nn.Linear(1, 1).state_dict()))
    assert target.weight is weight
    np.testing.assert_array_equal(target.weight.detach().numpy(), source.weight.detach().numpy())
    assigned = nn.Linear(3, 2)
    assigned.load_state_dict(source.state_dict(), assign=True)
    assert isinstance(assigned.weight, nn.Parameter) and assigned.weight.requires_grad


def _strict_error_pair(edit):
    torch_net, dtorch_net = _both(_net)
    torch_state = edit(OrderedDict(torch_net.state_dict()), torch)
    dtorch_state = edit(OrderedDict(dtorch_net.state_dict()), dtorch)
    return torch_net, dtorch_net, torch_state, dtorch_state


@pytest.mark.parametrize("edit", [
    lambda s, lib: (s.pop("heads.cls.bias"), s.pop("steps"), s)[-1],
    lambda s, lib: (s.__setitem__("heads.cls.extra", lib.zeros(1)), s.__setitem__("ghost.weight", lib.zeros(1)), s)[-1],
    lambda s, lib: (s.pop("extra.0.weight"), s.__setitem__("extra.7.weight", lib.zeros(1)), s)[-1],
    lambda s, lib: (s.__setitem__("heads.cls.weight", lib.zeros(3, 64)), s)[-1],
    lambda s, lib: (s.__setitem__("heads.box.weight", lib.zeros(4, 5)), s.pop("scale"), s)[-1],
    lambda s, lib: (s.__setitem__("scale", 3.0), s)[-1],
], ids=["missing", "unexpected", "both", "size", "size-and-missing", "not-a-tensor"])
def test_strict_load_errors_match_torch(edit):
    torch_net, dtorch_net, torch_state, dtorch_state = _strict_error_pair(edit)
    _same_error(lambda: torch_net.load_state_dict(torch_state), lambda: dtorch_net.load_state_dict(dtorch_state),
                RuntimeError)


def test_non_strict_load_reports_keys_like_torch():
    def edit(s, lib):
        s.pop("heads.cls.bias")
        s["ghost.weight"] = lib.zeros(1)
        return s

    torch_net, dtorch_net, torch_state, dtorch_state = _strict_error_pair(edit)
    expected = torch_net.load_state_dict(torch_state, strict=False)
    actual = dtorch_net.load_state_dict(dtorch_state, strict=False)
    assert actual.missing_keys == expected.missing_keys
    assert actual.unexpected_keys == expected.unexpected_keys
    assert repr(actual) == repr(expected)
    assert actual == (["heads.cls.bias"], ["ghost.weight"])
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        dtorch_net.load_state_dict([1, 2])


def test_state_dict_round_trip_between_libraries():
    torch_net, dtorch_net = _both(_net)
    dtorch_net.load_state_dict({k: dtorch.from_numpy(v.numpy().copy()) for k, v in torch_net.state_dict().items()})
    back = {k: torch.from_numpy(np.array(v.numpy())) for k, v in dtorch_net.state_dict().items()}
    torch_net.load_state_dict(back)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    torch_net.eval(), dtorch_net.eval()
    np.testing.assert_allclose(dtorch_net(dtorch.from_numpy(x)).detach().numpy(),
                               torch_net(torch.from_numpy(x)).detach().numpy(), atol=1e-5, rtol=1e-4)


# ---- hooks -----------------------------------------------------------------------------------------------------------


def test_forward_pre_and_post_hooks():
    fc = nn.Linear(2, 2)
    calls = []
    pre = fc.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = fc.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = fc(dtorch.ones(3, 2))
    np.testing.assert_allclose(out.detach().numpy(), fc.bias.detach().numpy() + 1 + np.zeros((3, 2)), rtol=1e-6)
    assert calls == [dtorch.Size([3, 2])]
    pre.remove()
    post.remove()
    out = fc(dtorch.zeros(3, 2))
    np.testing.assert_allclose(out.detach().numpy(), np.broadcast_to(fc.bias.detach().numpy(), (3, 2)))


def test_hooks_with_kwargs_and_prepend():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    order = []
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: order.append(("kw", kwargs["factor"])), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: order.append("first"), prepend=True)
    assert float(m(dtorch.ones(1)).item()) == 3.0
    assert order == ["first", ("kw", 3.0)]
    with m.register_forward_hook(lambda mod, args, out: out * 0):
        assert float(m(dtorch.ones(1)).item()) == 0.0
    assert float(m(dtorch.ones(1)).item()) == 3.0
    failures = []
    m.register_forward_hook(lambda mod, args, out: failures.append(out), always_call=True)
    with pytest.raises(TypeError):
        m("not a tensor", "nor a factor")
    assert failures == [None]


def test_full_backward_hook_matches_torch():
    records = {}

    def build(lib):
        model = lib.Linear(3, 2)
        key = "torch" if lib is torch.nn else "dtorch"

        def hook(module, grad_input, grad_output):
            records[key] = ([g if g is None else np.array(g.detach().numpy()) for g in grad_input],
                            [np.array(g.detach().numpy()) for g in grad_output])
            return (grad_input[0] * 2,)

        model.register_full_backward_hook(hook)
        return model

    torch_model, dtorch_model = _both(build)
    dtorch_model.load_state_dict({k: dtorch.from_numpy(v.numpy().copy()) for k, v in torch_model.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    tx, dx = torch.from_numpy(x).requires_grad_(), dtorch.from_numpy(x.copy()).requires_grad_()
    (torch_model(tx) ** 2).sum().backward()
    (dtorch_model(dx) ** 2).sum().backward()
    for actual, expected in zip(records["dtorch"], records["torch"]):
        for a, e in zip(actual, expected):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---- full backward hooks and backward pre-hooks, against torch -------------------------------------------------------


def _as_list(value):
    return None if value is None else np.asarray(value.detach().numpy()).tolist()


def _run_backward_hooks(lib, forward, call, requires, *, hook=None, pre_hook=None, seed_grads=None):
    """Build a module from ``forward`` in ``lib`` (torch or dtorch), hook it, run ``call`` and backward.

    Returns what the hooks saw and the inputs' ``.grad`` (lists, None where absent), to compare across libraries.
    """
    module = type("M", (lib.nn.Module,), {"forward": forward})()
    seen = []
    if pre_hook is not None:
        def record_pre(m, grad_output):
            seen.append(("pre", [_as_list(g) for g in grad_output]))
            return pre_hook(grad_output)
        module.register_full_backward_pre_hook(record_pre)
    if hook is not None:
        def record(m, grad_input, grad_output):
            seen.append(("full", [_as_list(g) for g in grad_input], [_as_list(g) for g in grad_output]))
            return hook(grad_input)
        module.register_full_backward_hook(record)
    data = np.arange(1.0, 7.0).reshape(3, 2)
    inputs = [lib.tensor(data[i] + i, requires_grad=r) for i, r in enumerate(requires)]
    outputs = call(module, *inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    loss = sum((o * (k + 2)).sum() for k, o in enumerate(outputs) if isinstance(o, lib.Tensor) and k != 1)
    loss.backward()
    return seen, [_as_list(x.grad) for x in inputs]


def _bilinear_like(self, x, k, y, z, scale=1.0):
    return x * y * k + x * scale + z


def _two_outputs(self, x, y, z):
    return x * 2 + z, x * y, 7, y * 3


def _times(factor):
    return lambda grads: tuple(None if g is None else g * factor for g in grads)


@pytest.mark.parametrize("requires", [(True, True, False), (True, False, False), (False, True, True)])
@pytest.mark.parametrize("hook", [lambda g: None, _times(100)], ids=["observe", "replace"])
def test_full_backward_hook_several_inputs_matches_torch(requires, hook):
    """grad_input has one entry per positional argument (None for the int, zeros for a Tensor that needs no grad);
    a returned tuple replaces the gradient of every input, not just the last one's."""
    def call(m, x, y, z):
        return m(x, 2, y, z, scale=3.0)

    expected = _run_backward_hooks(torch, _bilinear_like, call, requires, hook=hook)
    actual = _run_backward_hooks(dtorch, _bilinear_like, call, requires, hook=hook)
    assert actual == expected


@pytest.mark.parametrize("requires", [(True, True, False), (True, False, True)])
@pytest.mark.parametrize("pre_hook", [None, lambda g: None, _times(10)], ids=["none", "observe", "replace"])
def test_backward_hooks_on_a_tuple_output_match_torch(requires, pre_hook):
    """Output 1 is unused by the loss (grad_output None), output 2 is not a Tensor; the pre-hook's replacement is
    what the module and the full hook see."""
    def call(m, x, y, z):
        return m(x, y, z)

    expected = _run_backward_hooks(torch, _two_outputs, call, requires, hook=_times(3), pre_hook=pre_hook)
    actual = _run_backward_hooks(dtorch, _two_outputs, call, requires, hook=_times(3), pre_hook=pre_hook)
    assert actual == expected


def test_full_backward_hook_without_differentiable_inputs_warns_like_torch():
    def run(lib):
        lin = lib.nn.Linear(2, 1)
        seen = []
        lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, tuple(go[0].shape))))
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            lin(lib.ones(3, 2)).sum().backward()
        lin.register_full_backward_hook(lambda m, gi, go: (lib.ones(1),))
        with pytest.warns(UserWarning), pytest.raises(RuntimeError) as error:
            lin(lib.ones(3, 2)).sum().backward()
        return seen, str(error.value)

    assert run(dtorch) == run(torch)


@pytest.mark.parametrize("kind", ["full", "pre"])
def test_backward_hook_wrong_length_errors_match_torch(kind):
    def run(lib):
        module = type("M", (lib.nn.Module,), {"forward": _two_outputs})()
        if kind == "full":
            module.register_full_backward_hook(lambda m, gi, go: gi[:1])
        else:
            module.register_full_backward_pre_hook(lambda m, go: go[:2])
        x, y = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
        with pytest.raises(RuntimeError) as error:
            module(x, y, x)[0].sum().backward()
        return str(error.value)

    assert run(dtorch) == run(torch)


def test_backward_hooks_order_prepend_remove_and_retained_graph():
    def run(lib):
        order = []
        m = lib.nn.Tanh()
        m.register_full_backward_hook(lambda mod, gi, go: order.append("a"))
        h = m.register_full_backward_hook(lambda mod, gi, go: order.append("b"), prepend=True)
        m.register_full_backward_pre_hook(lambda mod, go: order.append("pre-a"))
        m.register_full_backward_pre_hook(lambda mod, go: order.append("pre-b"), prepend=True)
        x = lib.ones(2, requires_grad=True)
        y = m(x).sum()
        y.backward(retain_graph=True)
        y.backward()
        h.remove()
        m(x).sum().backward()
        return order, _as_list(x.grad)

    (order, grad), (expected_order, expected_grad) = run(dtorch), run(torch)
    assert order == expected_order
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-6)


def test_global_backward_hooks_run_before_the_modules_own():
    from dtorch.nn.modules import module as module_module

    order = []
    m = nn.Identity()
    m.register_full_backward_hook(lambda mod, gi, go: order.append("own"))
    with module_module.register_module_full_backward_hook(lambda mod, gi, go: order.append("global")), \
            module_module.register_module_full_backward_pre_hook(lambda mod, go: order.append("global-pre")):
        m(dtorch.ones(1, requires_grad=True)).sum().backward()
    m(dtorch.ones(1, requires_grad=True)).sum().backward()
    assert order == ["global-pre", "global", "own", "own"]


def test_full_backward_hook_with_create_graph():
    m = nn.Tanh()
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 2,))
    x = dtorch.tensor([0.5, -1.0], requires_grad=True)
    (g,) = dtorch.autograd.grad(m(x).sum(), x, create_graph=True)
    tx = torch.tensor([0.5, -1.0], requires_grad=True)
    np.testing.assert_allclose(g.detach().numpy(), 2 * (1 - torch.tanh(tx) ** 2).detach().numpy(), rtol=1e-6)
    assert g.requires_grad


def test_share_memory_returns_self_and_keeps_parameters():
    m = nn.Linear(2, 2)
    weight = m.weight
    assert m.share_memory() is m and m.weight is weight
    assert isinstance(torch.nn.Linear(2, 2).share_memory(), torch.nn.Linear)


# ---- repr ------------------------------------------------------------------------------------------------------------


def test_nested_repr_matches_torch():
    torch_net, dtorch_net = _both(_net)
    assert repr(dtorch_net) == repr(torch_net)

    def layers(lib):
        return lib.Sequential(OrderedDict([
            ("conv", lib.Conv2d(1, 8, 5, stride=2, padding="same" if False else 2, bias=False)),
            ("pool", lib.AvgPool2d(2)),
            ("gap", lib.AdaptiveAvgPool2d((1, 1))),
            ("flat", lib.Flatten()),
            ("unflat", lib.Unflatten(1, (2, 4))),
            ("ln", lib.LayerNorm(4)),
            ("gn", lib.GroupNorm(2, 4)),
            ("emb", lib.Embedding(5, 4, padding_idx=1, max_norm=1.0)),
            ("act", lib.Sequential(lib.LeakyReLU(0.2, inplace=True), lib.ELU(), lib.GELU(), lib.SiLU(),
                                   lib.Sigmoid(), lib.Tanh(), lib.Softplus(), lib.Softmax(dim=1),
                                   lib.LogSoftmax(1), lib.ReLU(inplace=True), lib.Identity())),
            ("losses", lib.ModuleList([lib.MSELoss(), lib.CrossEntropyLoss(label_smoothing=0.1), lib.NLLLoss(),
                                       lib.BCEWithLogitsLoss(), lib.KLDivLoss(), lib.HuberLoss(),
                                       lib.SmoothL1Loss(), lib.L1Loss(), lib.BCELoss()])),
            ("up", lib.ConvTranspose2d(8, 4, 3, stride=2, output_padding=1, groups=2, dilation=2)),
            ("pool1", lib.MaxPool1d(3, stride=1, padding=1, dilation=2, ceil_mode=True)),
            ("bn", lib.BatchNorm1d(4, momentum=None, affine=False, track_running_stats=False)),
            ("bil", lib.Bilinear(2, 3, 4, bias=False)),
            ("conv1", lib.Conv1d(2, 4, 3, padding="same", padding_mode="reflect", dilation=2)),
            ("empty", lib.ModuleList()),
            ("none", None),
        ]))

    torch_layers, dtorch_layers = _both(layers)
    assert repr(dtorch_layers) == repr(torch_layers)


def test_module_list_repr_compresses_runs_like_torch():
    def build(lib):
        return lib.ModuleList([lib.Linear(2, 2), lib.Linear(2, 2), lib.ReLU(), lib.Linear(2, 2),
                               lib.Sequential(lib.Linear(2, 3), lib.ReLU()), lib.Sequential(lib.Linear(2, 3),
                                                                                           lib.ReLU())])

    torch_list, dtorch_list = _both(build)
    assert repr(dtorch_list) == repr(torch_list)


def test_parameter_containers_repr_match_torch():
    torch_list = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(2, 3)), torch.zeros(4)])
    dtorch_list = nn.ParameterList([nn.Parameter(dtorch.zeros(2, 3)), dtorch.zeros(4)])
    assert repr(dtorch_list) == repr(torch_list).replace("torch.", "dtorch.")
    torch_dict = torch.nn.ParameterDict({"b": torch.nn.Parameter(torch.zeros(2)), "a": torch.zeros(1)})
    dtorch_dict = nn.ParameterDict({"b": nn.Parameter(dtorch.zeros(2)), "a": dtorch.zeros(1)})
    assert repr(dtorch_dict) == repr(torch_dict).replace("torch.", "dtorch.")
    assert list(dtorch_dict.state_dict()) == list(torch_dict.state_dict())


# ---- containers ------------------------------------------------------------------------------------------------------


def test_sequential_indexing_slicing_editing():
    layers = [nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3), nn.Tanh()]
    seq = nn.Sequential(*layers)
    assert seq[0] is layers[0] and seq[-1] is layers[3]
    sliced = seq[1:3]
    assert isinstance(sliced, nn.Sequential) and list(sliced) == layers[1:3]
    assert [n for n, _ in sliced.named_children()] == ["1", "2"]
    with pytest.raises(IndexError, match="index 4 is out of range"):
        seq[4]
    seq.append(nn.Sigmoid())
    assert len(seq) == 5
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"] and seq[1] is layers[2]
    seq.insert(1, nn.ReLU())
    assert isinstance(seq[1], nn.ReLU) and len(seq) == 5
    seq[0] = nn.Identity()
    assert isinstance(seq[0], nn.Identity)
    popped = seq.pop(-1)
    assert isinstance(popped, nn.Sigmoid)
    seq.extend([nn.ReLU()])
    combined = seq + nn.Sequential(nn.Identity())
    assert len(combined) == len(seq) + 1
    named = nn.Sequential(OrderedDict([("a", nn.Linear(2, 2)), ("b", nn.ReLU())]))
    assert list(named.state_dict()) == ["a.weight", "a.bias"]
    assert named(dtorch.ones(1, 2)).shape == dtorch.Size([1, 2])


def test_module_list_and_dict():
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(blocks) == 3 and blocks[-1] is list(blocks)[2]
    blocks.append(nn.ReLU())
    blocks.extend([nn.Tanh()])
    blocks += [nn.Sigmoid()]
    assert len(blocks) == 6
    blocks.insert(0, nn.Identity())
    assert isinstance(blocks[0], nn.Identity) and [n for n, _ in blocks.named_children()][-1] == "6"
    del blocks[0]
    assert isinstance(blocks[0], nn.Linear)
    assert isinstance(blocks[1:3], nn.ModuleList) and len(blocks[1:3]) == 2
    assert len(list(blocks.parameters())) == 6

    heads = nn.ModuleDict({"a": nn.Linear(1, 1)})
    heads["b"] = nn.Linear(1, 2)
    heads.update([("c", nn.ReLU())])
    assert list(heads.keys()) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert isinstance(heads.pop("c"), nn.ReLU)
    assert list(heads) == ["a", "b"]
    assert [n for n, _ in heads.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]


def test_parameter_list_and_dict():
    params = nn.ParameterList([dtorch.ones(2)])
    params.append(nn.Parameter(dtorch.zeros(3)))
    assert all(isinstance(p, nn.Parameter) for p in params) and len(params) == 2
    assert [n for n, _ in params.named_parameters()] == ["0", "1"]
    params[0] = dtorch.zeros(5)
    assert params[0].shape == dtorch.Size([5])
    model = nn.Module()
    model.params = params
    assert [n for n, _ in model.named_parameters()] == ["params.0", "params.1"]

    table = nn.ParameterDict({"w": dtorch.ones(2)})
    table["b"] = nn.Parameter(dtorch.zeros(1))
    assert list(table.keys()) == ["w", "b"] and isinstance(table["w"], nn.Parameter)
    del table["w"]
    assert list(table) == ["b"] and [n for n, _ in table.named_parameters()] == ["b"]


def test_module_without_forward_raises():
    with pytest.raises(NotImplementedError, match='Module \\[Module\\] is missing the required "forward" function'):
        nn.Module()(dtorch.ones(1))


@pytest.mark.gpu
def test_cuda_moves_parameters_in_place_and_back():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    weight = model[0].weight
    model.cuda()
    assert model[0].weight is weight and weight.device.type == "cuda"
    assert model[1].running_mean.device.type == "cuda" and model[1].num_batches_tracked.device.type == "cuda"
    out = model(dtorch.randn(5, 3, device="cuda"))
    out.sum().backward()
    assert weight.grad.device.type == "cuda"
    model.to("cpu")
    assert weight.device.type == "cpu" and weight.grad.device.type == "cpu"
    assert model[1].num_batches_tracked.item() == 1


def test_dtorch_nn_never_imports_torch():
    import subprocess
    import sys

    code = "import sys, dtorch, dtorch.nn, dtorch.nn.init; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_extra_state_and_state_dict_hooks_match_torch():
    def build(lib):
        class Counter(lib.Module):
            def __init__(self):
                super().__init__()
                self.fc = lib.Linear(2, 2)
                self.count = 0

            def get_extra_state(self):
                return {"count": self.count}

            def set_extra_state(self, state):
                self.count = state["count"]

        return lib.Sequential(Counter())

    torch_model, dtorch_model = _both(build)
    assert list(dtorch_model.state_dict()) == list(torch_model.state_dict())
    dtorch_model[0].count = 5
    fresh = build(nn)
    fresh.load_state_dict(dtorch_model.state_dict())
    assert fresh[0].count == 5
    state = fresh.state_dict()
    del state["0._extra_state"]
    torch_state = torch_model.state_dict()
    del torch_state["0._extra_state"]
    _same_error(lambda: torch_model.load_state_dict(torch_state), lambda: fresh.load_state_dict(state), RuntimeError)

    seen = []
    fc = nn.Linear(2, 2)
    fc.register_state_dict_pre_hook(lambda module, prefix, keep_vars: seen.append(("pre", prefix)))
    def drop_bias(module, sd, prefix, meta):
        del sd[prefix + "bias"]

    fc.register_state_dict_post_hook(drop_bias)
    assert list(nn.Sequential(fc).state_dict()) == ["0.weight"] and seen == [("pre", "0.")]

    def rename(module, sd, prefix, *rest):
        if prefix + "w" in sd:
            sd[prefix + "weight"] = sd.pop(prefix + "w")

    target = nn.Linear(2, 2, bias=False)
    target.register_load_state_dict_pre_hook(rename)
    target.load_state_dict({"w": dtorch.ones(2, 2)})
    assert bool((target.weight == 1).all())


def test_global_forward_hooks():
    from dtorch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    names = []
    pre = register_module_forward_pre_hook(lambda m, args: names.append(type(m).__name__))
    post = register_module_forward_hook(lambda m, args, out: out)
    try:
        nn.Sequential(nn.ReLU(), nn.Tanh())(dtorch.ones(1))
    finally:
        pre.remove()
        post.remove()
    assert names == ["Sequential", "ReLU", "Tanh"]
    nn.ReLU()(dtorch.ones(1))
    assert len(names) == 3


def test_always_call_forward_hooks_and_global_kwargs_hooks_match_torch():
    """A forward hook that raises still lets the always-call hooks run (global ones too); their own errors become
    warnings, and the first error propagates."""
    def run(lib):
        import importlib
        import warnings

        module_module = importlib.import_module(lib.__name__ + ".nn.modules.module")

        class Scale(lib.nn.Module):
            def forward(self, x, factor=1.0):
                return x * factor

        m, seen = Scale(), []
        handle = module_module.register_module_forward_hook(
            lambda mod, args, kwargs, out: seen.append(("global", kwargs)), with_kwargs=True, always_call=True)
        m.register_forward_hook(lambda mod, args, out: seen.append(("fails", out.tolist())) or 1 / 0)
        m.register_forward_hook(lambda mod, args, out: seen.append(("always", out is None)) or 1 / 0, always_call=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ZeroDivisionError):
                m(lib.ones(1), factor=2.0)
        handle.remove()
        return seen, [str(w.message).split(":")[0] for w in caught]

    assert run(dtorch) == run(torch)


def test_buffer_assignment_matches_torch():
    def run(lib):
        m = lib.nn.Module()
        m.a = lib.nn.Buffer(lib.ones(2))
        m.b = lib.nn.Buffer(lib.ones(2, requires_grad=True), persistent=False)
        seen = [list(m.state_dict()), [n for n, _ in m.named_buffers()], isinstance(m.a, lib.nn.Buffer),
                isinstance(lib.ones(1), lib.nn.Buffer), m.b.requires_grad, m.b.is_leaf]
        m.a = lib.zeros(3)
        m.register_buffer("c", lib.nn.Buffer(lib.ones(1), persistent=False))
        seen += [m.a.tolist(), list(m.state_dict())]
        m.x = 5
        with pytest.raises(KeyError) as error:
            m.x = lib.nn.Buffer(lib.ones(1))
        return seen + [str(error.value)]

    assert run(dtorch) == run(torch)
    source = dtorch.ones(2)
    buffer = nn.Buffer(source)
    buffer.add_(1.0)
    assert source.tolist() == [2.0, 2.0]  # the same memory, as torch's detach()


def test_nested_and_shared_module_backward_hooks_fire_in_torchs_order():
    def run(lib):
        def total(grads):
            return [None if g is None else round(float(g.sum()), 3) for g in grads]

        order = []
        seq = lib.nn.Sequential(lib.nn.Identity(), lib.nn.Tanh(), lib.nn.Identity())
        for i, mod in enumerate([seq, *seq]):
            mod.register_full_backward_hook(lambda m, gi, go, i=i: order.append(("full", i, total(gi), total(go))))
            mod.register_full_backward_pre_hook(lambda m, go, i=i: order.append(("pre", i)))
        (seq(lib.tensor([0.5, -0.25], requires_grad=True)) * 3).sum().backward()
        shared = lib.nn.Tanh()  # called twice: each call has its own hook state
        shared.register_full_backward_hook(lambda m, gi, go: order.append(("shared", total(gi))))
        shared(shared(lib.tensor([0.5, -0.25], requires_grad=True))).sum().backward()
        return order

    assert run(dtorch) == run(torch)


def test_in_place_forward_under_a_backward_hook_is_still_checked():
    """The hook's stand-in for an input shares its memory and its version counter: an in-place change of a tensor
    saved for backward still raises (torch refuses any in-place change there), other in-place changes give the
    gradients they would without the hook."""
    class Double(nn.Module):
        def forward(self, x):
            return x.mul_(2)

    m = Double()
    m.register_full_backward_hook(lambda *args: None)
    x = dtorch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        m(dtorch.tanh(x)).sum().backward()
    m(x * 1.0).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(RuntimeError, match="leaf Variable"):
        m(x)
