"""``dtorch.utils.hooks.RemovableHandle``: one handle class for tensor, autograd-node and module hooks; each kind
of hook is removed through it (and through ``with``), as PyTorch's handles remove theirs."""

import pickle

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch.utils.hooks import RemovableHandle


def test_tensor_hooks_remove_through_the_one_handle():
    leaf = dtorch.ones(2, requires_grad=True)
    handle = leaf.register_hook(lambda grad: grad * 3)
    assert type(handle) is RemovableHandle
    (leaf * 2).sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), [6.0, 6.0])
    handle.remove()
    handle.remove()  # a second remove does nothing
    leaf.grad = None
    (leaf * 2).sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), [2.0, 2.0])

    x = dtorch.ones(2, requires_grad=True)
    middle = x * 2  # a non-leaf: the hook sits on its grad_fn
    with middle.register_hook(lambda grad: grad * 10) as handle:
        assert type(handle) is RemovableHandle
        middle.sum().backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.numpy(), [20.0, 20.0])
    x.grad = None
    middle.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_post_accumulate_and_node_hooks_remove_through_the_one_handle():
    w = dtorch.ones(2, requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.sum().item()))
    assert type(handle) is RemovableHandle
    (w * 3).sum().backward()
    handle.remove()
    (w * 3).sum().backward()
    assert seen == [6.0]

    x = dtorch.ones(3, requires_grad=True)
    y = x.exp()
    calls = []
    post = y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: calls.append("post"))
    pre = y.grad_fn.register_prehook(lambda grad_outputs: calls.append("pre"))
    assert type(post) is RemovableHandle and type(pre) is RemovableHandle
    post.remove()
    pre.remove()
    y.sum().backward()
    assert calls == []


def test_module_hooks_remove_through_the_one_handle():
    layer = nn.Linear(2, 2)
    calls = []
    handles = [
        layer.register_forward_pre_hook(lambda module, args: calls.append("pre")),
        layer.register_forward_pre_hook(lambda module, args, kwargs: calls.append("pre-kw"), with_kwargs=True),
        layer.register_forward_hook(lambda module, args, output: calls.append("forward"), prepend=True),
        layer.register_full_backward_hook(lambda module, grad_in, grad_out: calls.append("backward")),
        layer.register_state_dict_pre_hook(lambda module, prefix, keep_vars: calls.append("state")),
        nn.modules.module.register_module_forward_hook(lambda module, args, output: calls.append("global")),
    ]
    assert all(type(handle) is RemovableHandle for handle in handles)
    layer(dtorch.ones(1, 2, requires_grad=True)).sum().backward()
    layer.state_dict()
    assert sorted(calls) == ["backward", "forward", "global", "pre", "pre-kw", "state"]
    for handle in handles:
        handle.remove()
    assert not layer._forward_pre_hooks and not layer._forward_pre_hooks_with_kwargs
    calls.clear()
    layer(dtorch.ones(1, 2, requires_grad=True)).sum().backward()
    layer.state_dict()
    assert calls == []
    with layer.register_forward_hook(lambda module, args, output: output * 0):
        assert layer(dtorch.ones(1, 2)).abs().sum().item() == 0
    assert layer(dtorch.ones(1, 2)).abs().sum().item() != 0


def _no_change(module, args, output):
    return None


def test_handles_in_lists_and_dicts_and_their_pickles():
    hooks, hook = [], print
    handle = RemovableHandle(hooks, hook)
    RemovableHandle(hooks, hook)  # the same function twice: two registrations
    handle.remove()
    assert hooks == [hook]
    table, flags = {}, {}
    handle = RemovableHandle(table, hook, extra_dicts=(flags,))
    flags[handle.id] = True
    handle.remove()
    assert table == {} and flags == {}
    with pytest.raises(TypeError, match="list or a dict"):
        RemovableHandle((), hook)
    with pytest.raises(TypeError, match="extra_dicts"):
        RemovableHandle([], hook, extra_dicts=({},))

    module = nn.Identity()
    kept = module.register_forward_hook(_no_change)
    clone, clone_handle = pickle.loads(pickle.dumps((module, kept)))
    assert len(clone._forward_hooks) == 1
    clone_handle.remove()
    assert len(clone._forward_hooks) == 0 and len(module._forward_hooks) == 1
    assert RemovableHandle([], hook).id > clone_handle.id
