"""The backward engine: accumulation, ordering, retain_graph, create_graph, hooks and callbacks."""

import gc
import weakref

import numpy as np
import pytest
import torch

import dtorch
from dtorch.autograd import engine


def test_gradient_accumulates_across_backward_calls():
    x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_shared_subexpression_sums_both_paths():
    x = dtorch.tensor([2.0], requires_grad=True)
    y = x * x
    z = y + y * y  # dz/dx = 2x + 4x^3
    z.backward()
    assert x.grad.item() == pytest.approx(2 * 2 + 4 * 8)


def test_same_gradient_array_is_not_shared_between_leaves():
    a = dtorch.ones(3, requires_grad=True)
    b = dtorch.ones(3, requires_grad=True)
    (a + b).sum().backward()  # Add hands one gradient array to both inputs
    a.grad.mul_(10)
    np.testing.assert_allclose(b.grad.numpy(), [1, 1, 1])


def test_broadcast_gradient_is_writable_and_owned():
    x = dtorch.ones(3, requires_grad=True)
    x.sum().backward()  # Sum's backward is a read-only broadcast view
    x.grad.add_(1)
    np.testing.assert_allclose(x.grad.numpy(), [2, 2, 2])


def test_deep_graph_has_no_recursion_limit():
    x = dtorch.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y + 0.0
    y.backward()
    assert x.grad.item() == 1.0


def test_non_scalar_backward_needs_gradient():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(dtorch.tensor([1.0, 0.5]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0])


def test_backward_gradient_shape_mismatch():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(dtorch.ones(3))


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        dtorch.ones(2).sum().backward()


def test_second_backward_without_retain_graph_raises():
    x = dtorch.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = dtorch.ones(2, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_create_graph_second_derivative_matches_torch():
    values = [0.3, -1.2, 2.0]
    x = dtorch.tensor(values, dtype=dtorch.float64, requires_grad=True)
    tx = torch.tensor(values, dtype=torch.float64, requires_grad=True)

    def f(v, lib):
        return (lib.tanh(v) * v.exp() + v.sin() * v ** 3 + (v * v).sigmoid()).sum()

    (g,) = dtorch.autograd.grad(f(x, dtorch), x, create_graph=True)
    (tg,) = torch.autograd.grad(f(tx, torch), tx, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-10)
    g.sum().backward()
    tg.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


def test_create_graph_through_matmul_and_reductions():
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    a = dtorch.tensor(a_np, requires_grad=True)
    b = dtorch.tensor(b_np, requires_grad=True)
    ta = torch.tensor(a_np, requires_grad=True)
    tb = torch.tensor(b_np, requires_grad=True)

    def f(x, y):
        out = x @ y
        return (out * out).mean() + out.var() + out.logsumexp(dim=1).sum() + out.norm()

    ga, gb = dtorch.autograd.grad(f(a, b), (a, b), create_graph=True)
    tga, tgb = torch.autograd.grad(f(ta, tb), (ta, tb), create_graph=True)
    ((ga * ga).sum() + gb.sum()).backward()
    ((tga * tga).sum() + tgb.sum()).backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_autograd_grad_does_not_touch_dot_grad_and_checks_unused():
    x = dtorch.ones(2, requires_grad=True)
    unused = dtorch.ones(2, requires_grad=True)
    y = (x * 2).sum()
    (g,) = dtorch.autograd.grad(y, x, retain_graph=True)
    assert x.grad is None
    np.testing.assert_allclose(g.numpy(), [2, 2])
    with pytest.raises(RuntimeError, match="appears to not have been used"):
        dtorch.autograd.grad(y, unused, retain_graph=True)
    assert dtorch.autograd.grad(y, unused, allow_unused=True)[0] is None


def test_grad_with_respect_to_intermediate():
    x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    (g,) = dtorch.autograd.grad(y, h)
    np.testing.assert_allclose(g.numpy(), [6.0, 12.0])


def test_backward_inputs_restricts_accumulation():
    a = dtorch.ones(2, requires_grad=True)
    b = dtorch.ones(2, requires_grad=True)
    (a * b * 2).sum().backward(inputs=[a])
    np.testing.assert_allclose(a.grad.numpy(), [2, 2])
    assert b.grad is None


def test_tensor_hook_on_leaf_and_on_intermediate_and_removal():
    x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x * 2
    handle_h = h.register_hook(lambda g: seen.append(("h", g.tolist())))
    handle_x = x.register_hook(lambda g: g * 10)
    h.sum().backward()
    assert seen == [("h", [1.0, 1.0])]
    np.testing.assert_allclose(x.grad.numpy(), [20, 20])
    handle_x.remove()
    handle_h.remove()
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


def test_retain_grad_keeps_intermediate_gradient():
    x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    h.retain_grad()
    (h * 3).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [3, 3])
    assert h.retains_grad


def test_post_accumulate_grad_hook_runs_after_accumulation_in_reverse_order():
    w1 = dtorch.ones(2, requires_grad=True)
    w2 = dtorch.ones(2, requires_grad=True)
    order = []
    w1.register_post_accumulate_grad_hook(lambda p: order.append(("w1", p.grad.tolist())))
    w2.register_post_accumulate_grad_hook(lambda p: order.append(("w2", p.grad.tolist())))
    h = w1 * 2  # w1 is used first in forward ...
    out = (h * w2).sum() + (w2 * 0).sum()  # ... and w2 twice: its hook fires once, with the summed gradient
    out.backward()
    assert order == [("w2", [2.0, 2.0]), ("w1", [2.0, 2.0])]


def test_post_accumulate_grad_hook_rejects_non_leaf():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda p: None)


def test_queue_callback_runs_once_after_backward():
    x = dtorch.ones(3, requires_grad=True)
    events = []

    def hook(param):
        events.append("hook")
        if events.count("hook") == 1:
            engine.queue_callback(lambda: events.append(("callback", param.grad.tolist())))

    x.register_post_accumulate_grad_hook(hook)
    (x * 2).sum().backward()
    assert events == ["hook", ("callback", [2.0, 2.0, 2.0])]


def test_queue_callback_outside_backward_raises():
    with pytest.raises(RuntimeError, match="during backward"):
        engine.queue_callback(lambda: None)


def test_backward_order_is_deterministic():
    def run():
        order = []
        params = [dtorch.ones(2, requires_grad=True) for _ in range(6)]
        for index, p in enumerate(params):
            p.register_post_accumulate_grad_hook(lambda _p, index=index: order.append(index))
        total = params[0] * 1
        for p in params[1:]:
            total = total * p + p
        total.sum().backward()
        return order

    first = run()
    assert first == run() == [5, 4, 3, 2, 1, 0]


def test_inplace_on_saved_tensor_raises():
    x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    h = x * 1
    y = h.log()  # log's backward reads its input
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("op", ["exp", "tanh", "sigmoid", "sqrt", "rsqrt", "relu"])
def test_inplace_on_input_of_an_op_that_saves_its_output_is_allowed_like_torch(op):
    grads = []
    for lib in (dtorch, torch):
        x = lib.tensor([0.5, 1.5, 2.0], requires_grad=True)
        h = x * 1
        y = getattr(h, op)()
        h.add_(1)  # PyTorch saved y, not h, for these ops
        (y * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_create_graph_through_an_output_saving_op_still_checks_its_input():
    x = dtorch.tensor([0.5, 1.5], requires_grad=True)
    h = x * 1
    y = h.exp()
    h.add_(1)  # the double-backward formula reads h: with create_graph this must raise
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        dtorch.autograd.grad(y.sum(), x, create_graph=True)


@pytest.mark.parametrize("op", ["exp", "tanh", "sigmoid", "sqrt", "rsqrt", "relu"])
@pytest.mark.parametrize("modify", ["add_", "setitem", "slice mul_"])
def test_inplace_on_saved_output_raises_like_torch(op, modify):
    # these ops' backward reads their own output: changing it afterwards must raise, not give wrong gradients
    for lib in (dtorch, torch):
        x = lib.tensor([0.5, 1.5, 2.0], requires_grad=True)  # inside every op's domain
        y = getattr(x * 1, op)()
        if modify == "add_":
            y.add_(1)
        elif modify == "setitem":
            y[0] = 3.0
        else:
            y[1:].mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_saved_output_left_alone_backpropagates():
    x = dtorch.tensor([0.5, -1.0], requires_grad=True)
    y = x.exp()
    z = y * 1  # a new tensor: changing it leaves exp's output intact
    z.add_(1)
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, -1.0]), rtol=1e-6)


def test_custom_function_saved_output_and_input_are_version_checked():
    class Exp(dtorch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, grad):
            (out,) = ctx.saved_tensors
            return grad * out

    class Square(dtorch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = dtorch.tensor([0.5, 1.0], requires_grad=True)
    y = Exp.apply(x)
    y.sum().backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]), rtol=1e-6)
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    h = x * 1
    z = Square.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with dtorch.no_grad():
        x.add_(1)
    np.testing.assert_allclose(x.detach().numpy(), [2, 2])


def test_inplace_on_intermediate_is_differentiated_like_torch():
    values = [0.5, -1.0, 2.0]
    x = dtorch.tensor(values, requires_grad=True)
    tx = torch.tensor(values, requires_grad=True)
    for v, lib in ((x, dtorch), (tx, torch)):
        h = v * 2
        h.mul_(v)  # saves h's old value
        h[0] = 0.0
        h.add_(1)
        h.exp_()
        h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_version_counter_shared_with_views():
    x = dtorch.zeros(4)
    view = x[1:3]
    assert x._version == 0
    view.add_(1)
    assert x._version == 1 and view._version == 1
    np.testing.assert_allclose(x.numpy(), [0, 1, 1, 0])


def test_detect_anomaly_names_the_op():
    x = dtorch.tensor([-1.0], requires_grad=True)
    with dtorch.autograd.detect_anomaly():
        y = x.sqrt()  # backward 1/(2 sqrt(x)) is nan for x < 0
        with pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values in its 0th output"):
            y.sum().backward()


def test_graph_is_freed_when_outputs_die():
    x = dtorch.ones(1000, requires_grad=True)
    y = (x * 2).exp()
    node = weakref.ref(y.grad_fn)
    del y
    gc.collect()
    assert node() is None


def test_grad_fn_names_and_next_functions():
    x = dtorch.ones(2, requires_grad=True)
    y = x * 2 + 1
    assert y.grad_fn.name() == "AddBackward0"
    mul_node = y.grad_fn.next_functions[0][0]
    assert mul_node.name() == "MulBackward0"
    assert mul_node.next_functions[0][0].variable is x


def _record_backward_order(lib):
    """Names of the nodes (their post hooks) and leaves (post-accumulate hooks) in the order backward reaches them,
    on a graph with branches, a shared intermediate and leaves used more than once."""
    order = []
    w1, w2, w3 = (lib.tensor([0.5, -1.0, 2.0], requires_grad=True) for _ in range(3))
    for name, leaf in (("w1", w1), ("w2", w2), ("w3", w3)):
        leaf.register_post_accumulate_grad_hook(lambda _p, name=name: order.append(name))
    a = w1 * 2
    b = a.exp()
    c = a * w2
    d = b + c
    e = c.tanh() * w1
    f = (d * w3).sum()
    out = f + e.sum() + (w2 * w3).sum()
    for name, tensor in (("a", a), ("b", b), ("c", c), ("d", d), ("e", e), ("f", f)):
        tensor.grad_fn.register_hook(lambda _inputs, _outputs, name=name: order.append(name))
    out.backward()
    return order, [w.grad.tolist() for w in (w1, w2, w3)]


def test_backward_visits_nodes_and_leaves_in_torch_order():
    order, grads = _record_backward_order(dtorch)
    expected_order, expected_grads = _record_backward_order(torch)
    assert order == expected_order
    np.testing.assert_allclose(grads, expected_grads, rtol=1e-6)


def test_graph_reached_from_two_roots_runs_each_node_once():
    x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    tx = torch.tensor([1.0, 2.0], requires_grad=True)
    outputs = []
    for lib, leaf in ((dtorch, x), (torch, tx)):
        hidden = leaf * leaf
        first = (hidden * 3).sum()
        second = hidden.sum()  # the second root shares ``hidden`` with the first
        lib.autograd.backward([first, second, hidden.sum() * 0 + first])
        outputs.append(leaf.grad.tolist())
    np.testing.assert_allclose(outputs[0], outputs[1])


def test_reshaped_gradient_is_kept_without_a_copy():
    # View's backward reshapes a transposed gradient: NumPy copies, then views the copy, which nothing else holds
    x = dtorch.arange(64.0, requires_grad=True)
    (x.view(8, 8).t() * dtorch.arange(64.0).view(8, 8)).sum().backward()
    expected = torch.arange(64.0, requires_grad=True)
    (expected.view(8, 8).t() * torch.arange(64.0).view(8, 8)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), expected.grad.numpy())
    array = x.grad._array
    assert array.base is not None and array.flags.writeable  # taken as it came
    x.grad.add_(1)
    np.testing.assert_array_equal(x.grad.numpy(), expected.grad.numpy() + 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_views_of_one_array_are_not_shared_between_leaves(dtype):
    # Cat's backward hands each input a view of one gradient array: each leaf gets memory of its own
    a = dtorch.tensor(np.ones((2, 3), dtype), requires_grad=True)
    b = dtorch.tensor(np.ones((2, 3), dtype), requires_grad=True)
    (dtorch.cat([a, b]) * dtorch.tensor(np.arange(12, dtype=dtype).reshape(4, 3))).sum().backward()
    assert not np.shares_memory(a.grad._array, b.grad._array)
    a.grad.mul_(0)
    np.testing.assert_array_equal(b.grad.numpy(), np.arange(6, 12, dtype=dtype).reshape(2, 3))
    assert a.grad.dtype == b.grad.dtype == getattr(dtorch, np.dtype(dtype).name)


def test_gradient_kept_by_a_hook_is_not_taken_as_the_leaf_gradient_view():
    x = dtorch.arange(6.0, requires_grad=True)
    kept = []
    node_input = x.view(2, 3).t()
    node_input.register_hook(lambda grad: kept.append(grad))  # holds the gradient that reaches the view's node
    (node_input * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(6, 2.0))
    x.grad.add_(1)
    np.testing.assert_array_equal(kept[0].numpy(), np.full((3, 2), 2.0))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_implicit_gradient_of_a_one_element_output(dtype, shape):
    x = dtorch.full(shape, 3.0, dtype=getattr(dtorch, dtype), requires_grad=True)
    (x * 2).backward()
    assert x.grad.dtype == x.dtype and tuple(x.grad.shape) == shape
    assert x.grad.tolist() == torch.full(shape, 2.0).tolist()


def test_sole_view_is_only_a_whole_contiguous_view_nothing_else_holds():
    assert engine._sole_view(np.ones((4, 4)).T.reshape(16))  # reshape's copy, viewed: taken as it is
    owner = np.ones(16)
    assert not engine._sole_view(owner.reshape(4, 4))  # its memory is also ``owner``'s
    assert not engine._sole_view(np.ones(8)[:4])  # part of a larger array: keeping it would keep all of it
    assert not engine._sole_view(np.ones((4, 4)).T)  # not C-contiguous
    assert not engine._sole_view(np.ones(4))  # not a view at all


@pytest.mark.parametrize("op", [lambda x: x.clone(), lambda x: x + 0, lambda x: x * 1, lambda x: x.view(2, 3),
                                lambda x: x.reshape(6), lambda x: x, lambda x: x.detach().requires_grad_()],
                         ids=["clone", "plus zero", "times one", "view", "reshape", "the leaf itself", "new leaf"])
def test_a_leaf_grad_shares_no_memory_with_the_gradient_given_to_backward(op):
    # the caller may reuse its gradient tensor: changing it after backward must not change .grad (PyTorch copies
    # a gradient the caller still holds before keeping it, except through views)
    x = dtorch.zeros(2, 3, requires_grad=True)
    y = op(x)
    leaf = y if y.grad_fn is None else x
    gradient = dtorch.ones(tuple(y.shape))
    y.backward(gradient)
    with dtorch.no_grad():
        gradient.add_(5.0)
    np.testing.assert_array_equal(leaf.grad.numpy(), np.ones(tuple(leaf.shape)))
