"""Shape ops against PyTorch: views, permutations, expansion, joining and splitting, flip/roll."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op, ints


def test_reshape_view_flatten_unflatten():
    check_op(lambda x: x.reshape(4, 6), None, [(2, 3, 4)])
    check_op(lambda x: x.reshape(-1), None, [(2, 3, 4)])
    check_op(lambda x: x.reshape((3, -1)), None, [(2, 3, 4)])
    check_op(lambda x: x.reshape(6, 4), None, [(4, 6)], noncontiguous=True)
    check_op(lambda x: x.reshape(()), None, [(1, 1)])
    check_op(lambda x: x.reshape(1, 1), None, [()])
    check_op(lambda x: x.reshape(0, 5), None, [(5, 0)])
    check_op(lambda x: x.view(3, 8), None, [(2, 3, 4)])
    check_op(lambda x: x.view(-1, 2), None, [(2, 3, 4)])
    check_op(lambda x: x.view(1, 4, 6), None, [(4, 6)], noncontiguous=True)  # adding unit dims is fine
    check_op(lambda x: x.flatten(), None, [(2, 3, 4)])
    check_op(lambda x: x.flatten(1), None, [(2, 3, 4)])
    check_op(lambda x: x.flatten(0, 1), None, [(2, 3, 4)], noncontiguous=True)
    check_op(lambda x: x.flatten(), None, [()])
    check_op(lambda x: x.unflatten(1, (3, 4)), None, [(2, 12)])
    check_op(lambda x: x.unflatten(-1, (2, -1)), None, [(2, 12)])
    check_op(lambda x: x.view_as(dtorch.zeros(6, 4)) if isinstance(x, dtorch.Tensor) else
             x.view_as(torch.zeros(6, 4)), None, [(2, 3, 4)])
    check_op(lambda x: x.reshape_as(dtorch.zeros(4, 6)) if isinstance(x, dtorch.Tensor) else
             x.reshape_as(torch.zeros(4, 6)), None, [(6, 4)], noncontiguous=True)


def test_view_on_non_contiguous_raises_and_reshape_copies():
    for lib in (torch, dtorch):
        x = lib.zeros(3, 4).t()
        with pytest.raises(RuntimeError, match="view size is not compatible with input tensor's size and stride"):
            x.view(12)
        assert x.reshape(12).shape == (12,)
        with pytest.raises(RuntimeError, match="invalid for input of size"):
            x.reshape(5, -1)
        with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
            x.reshape(-1, -1)


def test_views_share_memory_like_torch():
    for lib in (torch, dtorch):
        x = lib.zeros(2, 3)
        x.view(6)[1] = 1
        x.t()[2, 1] = 2
        x[1].unsqueeze(0)[0, 0] = 3
        x.reshape(3, 2)[0, 0] = 4
        assert x.tolist() == [[4.0, 1.0, 0.0], [3.0, 0.0, 2.0]]
        y = x.t().contiguous()
        y[0, 0] = 9
        assert x[0, 0].item() == 4.0 and y.is_contiguous()


def test_permute_transpose_t_mT():
    check_op(lambda x: x.permute(2, 0, 1), None, [(2, 3, 4)])
    check_op(lambda x: x.permute((1, 0, -1)), None, [(2, 3, 4)])
    check_op(lambda x: dtorch.permute(x, (1, 0)), lambda x: torch.permute(x, (1, 0)), [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.permute(()), None, [()])
    check_op(lambda x: x.transpose(0, 2), None, [(2, 3, 4)])
    check_op(lambda x: x.transpose(-1, -2), None, [(2, 3, 4)])
    check_op(lambda x: x.swapaxes(0, 1), None, [(2, 3)])
    check_op(lambda x: x.t(), None, [(2, 3)])
    check_op(lambda x: x.t(), None, [(3,)])
    check_op(lambda x: x.t(), None, [()])
    check_op(lambda x: x.T, None, [(2, 3)])
    check_op(lambda x: x.mT, None, [(2, 3, 4)])
    check_op(lambda x: x.mT, None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.movedim(0, -1), None, [(2, 3, 4)])
    check_op(lambda x: x.transpose(0, 1).transpose(0, 1) * 2, None, [(3, 0)])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError):
            lib.zeros(2, 3).permute(0, 0)
        with pytest.raises(RuntimeError):
            lib.zeros(2, 3, 4).t()


def test_squeeze_unsqueeze():
    check_op(lambda x: x.squeeze(), None, [(1, 3, 1, 2)])
    check_op(lambda x: x.squeeze(0), None, [(1, 3, 1, 2)])
    check_op(lambda x: x.squeeze(1), None, [(1, 3, 1, 2)])  # not of extent 1: unchanged
    check_op(lambda x: x.squeeze(-2), None, [(1, 3, 1, 2)])
    check_op(lambda x: x.squeeze((0, 2)), None, [(1, 3, 1, 2)])
    check_op(lambda x: x.squeeze(), None, [()])
    check_op(lambda x: x.squeeze(0), None, [()])
    check_op(lambda x: x.unsqueeze(0), None, [(3, 2)])
    check_op(lambda x: x.unsqueeze(-1), None, [(3, 2)], noncontiguous=True)
    check_op(lambda x: x.unsqueeze(1), None, [(3, 2)])
    check_op(lambda x: x.unsqueeze(0), None, [()])
    check_op(lambda x: x.unsqueeze(-1), None, [()])
    check_op(lambda x: x[None, :, None], None, [(3,)])


def test_expand_expand_as_broadcast_to_repeat():
    check_op(lambda x: x.expand(3, 4), None, [(1, 4)])
    check_op(lambda x: x.expand(2, 3, 4), None, [(3, 1)])
    check_op(lambda x: x.expand(-1, 4), None, [(3, 1)])
    check_op(lambda x: x.expand(2, -1, -1), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.expand(5), None, [()])
    check_op(lambda x: x.expand(0, 3), None, [(1, 3)])
    check_op(lambda x, y: x.expand_as(y), None, [(1, 4), (3, 4)])
    check_op(lambda x: x.broadcast_to((2, 3)), None, [(3,)])
    check_op(lambda x: x.repeat(2, 3), None, [(2, 3)])
    check_op(lambda x: x.repeat(2, 1, 3), None, [(2, 3)], noncontiguous=True)
    check_op(lambda x: x.repeat(3), None, [()])
    check_op(lambda x: x.repeat(0, 2), None, [(2,)])
    check_op(lambda x: x.repeat(2, 2), None, [ints((2,))])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="must match the existing size"):
            lib.zeros(2, 3).expand(4, 3)
        with pytest.raises(RuntimeError):
            lib.zeros(2, 3).repeat(2)


def test_cat_stack():
    check_op(lambda a, b: dtorch.cat([a, b]), lambda a, b: torch.cat([a, b]), [(2, 3), (4, 3)])
    check_op(lambda a, b: dtorch.cat((a, b), dim=1), lambda a, b: torch.cat((a, b), dim=1), [(2, 3), (2, 1)])
    check_op(lambda a, b, c: dtorch.cat([a, b, c], -1), lambda a, b, c: torch.cat([a, b, c], -1),
             [(2, 3), (2, 1), (2, 0)], noncontiguous=True)
    check_op(lambda a, b: dtorch.cat([a, b]), lambda a, b: torch.cat([a, b]), [(3,), (0,)])
    check_op(lambda a, b: dtorch.cat([a, b]), lambda a, b: torch.cat([a, b]), [(2, 3), ints((1, 3))])
    check_op(lambda a, b: dtorch.concat([a, b], 0), lambda a, b: torch.concat([a, b], 0), [ints((2,)), ints((3,))])
    check_op(lambda a, b: dtorch.stack([a, b]), lambda a, b: torch.stack([a, b]), [(2, 3), (2, 3)])
    check_op(lambda a, b: dtorch.stack([a, b], dim=-1), lambda a, b: torch.stack([a, b], dim=-1), [(2, 3), (2, 3)],
             noncontiguous=True)
    check_op(lambda a, b: dtorch.stack([a, b], -1), lambda a, b: torch.stack([a, b], -1), [(), ()])
    check_op(lambda a: dtorch.stack([a, a * 2]), lambda a: torch.stack([a, a * 2]), [(0, 2)])
    check_op(lambda a, b: dtorch.stack([a, b]), lambda a, b: torch.stack([a, b]), [(3,), ints((3,))])
    check_op(lambda a, b: dtorch.hstack([a, b]), lambda a, b: torch.hstack([a, b]), [(2, 3), (2, 1)])
    check_op(lambda a, b: dtorch.vstack([a, b]), lambda a, b: torch.vstack([a, b]), [(3,), (2, 3)])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0"):
            lib.cat([lib.zeros(2, 3), lib.zeros(2, 4)])
        with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
            lib.stack([lib.zeros(2), lib.zeros(3)])


def test_split_chunk_unbind_narrow_select():
    check_op(lambda x: x.split(2), None, [(5, 3)])
    check_op(lambda x: x.split(2, dim=1), None, [(5, 3)], noncontiguous=True)
    check_op(lambda x: x.split([1, 4]), None, [(5, 3)])
    check_op(lambda x: x.split([3, 0, 0], 1), None, [(5, 3)])
    check_op(lambda x: dtorch.split(x, 10), lambda x: torch.split(x, 10), [(5, 3)])
    check_op(lambda x: x.chunk(2), None, [(5, 3)])
    check_op(lambda x: x.chunk(3, 1), None, [(5, 3)])
    check_op(lambda x: x.chunk(4), None, [(6,)])  # torch gives 3 chunks of 2
    check_op(lambda x: x.chunk(4), None, [(5,)])
    check_op(lambda x: x.unbind(), None, [(3, 2)])
    check_op(lambda x: x.unbind(1), None, [(3, 2)], noncontiguous=True)
    check_op(lambda x: dtorch.unbind(x, -1), lambda x: torch.unbind(x, -1), [(2, 3, 4)])
    check_op(lambda x: x.unbind(0), None, [(0, 3)])
    check_op(lambda x: x.narrow(0, 1, 2), None, [(4, 3)])
    check_op(lambda x: x.narrow(1, -2, 2), None, [(4, 3)], noncontiguous=True)
    check_op(lambda x: x.narrow(1, 0, 0), None, [(4, 3)])
    check_op(lambda x: x.select(1, -1), None, [(4, 3)])
    check_op(lambda x: x.tensor_split(3), None, [(7, 2)])
    check_op(lambda x: x.tensor_split([1, 4], dim=1), None, [(2, 6)])
    check_op(lambda x: [t.sum() for t in x.split(1)], None, [(3, 2)])


def test_flip_roll_contiguous():
    check_op(lambda x: x.flip(0), None, [(3, 4)])
    check_op(lambda x: x.flip((0, 1)), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.flip(-1), None, [(2, 3, 4)])
    check_op(lambda x: x.flip(0), None, [()])
    check_op(lambda x: x.flip(0), None, [(0,)])
    check_op(lambda x: x.roll(1), None, [(3, 4)])
    check_op(lambda x: x.roll(-2, 1), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.roll((1, 2), (0, 1)), None, [(3, 4)])
    check_op(lambda x: x.roll(5, 0), None, [(3,)])
    check_op(lambda x: dtorch.roll(x, 1), lambda x: torch.roll(x, 1), [()])
    check_op(lambda x: x.contiguous(), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.contiguous(), None, [(3, 4)])
    check_op(lambda x: x.flip(0), None, [ints((4,))])
    for lib in (torch, dtorch):
        x = lib.zeros(3, 4)
        assert x.contiguous() is x
        assert x.t().contiguous().is_contiguous() and x.t().contiguous().stride() == (3, 1)


def test_shape_ops_chain_gradients():
    check_op(lambda x: x.t().reshape(-1, 2).unsqueeze(0).expand(3, -1, -1).flip(1).sum(0), None, [(4, 3)])
    check_op(lambda x, y: dtorch.cat([x.t(), y]).split(2)[1] if isinstance(x, dtorch.Tensor) else
             torch.cat([x.t(), y]).split(2)[1], None, [(3, 2), (4, 3)])


def test_view_of_non_contiguous_tensor_where_strides_allow():
    check_op(lambda x: x[:, :3].view(2, 2, 3), None, [(4, 6)])
    check_op(lambda x: x.t().view(3, 1, 2), None, [(2, 3)])
    for lib in (torch, dtorch):
        x = lib.zeros(4, 6)
        v = x[:, :3].view(2, 2, 3)
        v[1, 1, 2] = 1
        assert x[3, 2].item() == 1


def test_empty_tensor_shape_ops():
    check_op(lambda x: x.chunk(2), None, [(0,)])
    check_op(lambda x: x.chunk(3, 1), None, [(2, 0)])
    for fn in (lambda x: x.split(2, 1), lambda x: x.unbind(1), lambda x: x.tensor_split(2), lambda x: x.squeeze(1),
               lambda x: x.repeat(2, 1), lambda x: x.roll(1, 0), lambda x: x.permute(1, 0), lambda x: x.flatten(),
               lambda x: x.expand(2, 0, 3), lambda x: x.narrow(0, 0, 0), lambda x: x[..., None, 1:]):
        check_op(fn, None, [(0, 3)])


@pytest.mark.parametrize("name, make", [
    ("cat 0-d", lambda L: L.cat([L.tensor(1.0), L.tensor(2.0)])),
    ("cat ranks", lambda L: L.cat([L.zeros(2), L.zeros(2, 2)])),
    ("stack dim", lambda L: L.stack([L.zeros(2), L.zeros(2)], dim=3)),
    ("reshape", lambda L: L.zeros(6).reshape(4, 2)),
    ("permute", lambda L: L.zeros(2, 3).permute(0)),
    ("transpose", lambda L: L.zeros(2, 3).transpose(0, 2)),
    ("squeeze", lambda L: L.zeros(2, 3).squeeze(2)),
    ("index", lambda L: L.zeros(2, 3)[2]),
    ("gather", lambda L: L.zeros(2, 3).gather(1, L.tensor([[5]]))),
    ("index_select", lambda L: L.zeros(2, 3).index_select(1, L.tensor([5]))),
    ("scatter", lambda L: L.zeros(2, 3).scatter(1, L.tensor([[5]]), 1.0)),
    ("narrow", lambda L: L.zeros(2, 3).narrow(1, 2, 2)),
    ("split", lambda L: L.zeros(5).split([2, 2])),
    ("chunk", lambda L: L.zeros(3).chunk(0)),
    ("einsum", lambda L: L.einsum("ij,jk->ik", L.zeros(2, 3), L.zeros(4, 5))),
    ("einsum operands", lambda L: L.einsum("ij,jk->ik", L.zeros(2, 3))),
    ("masked_fill", lambda L: L.zeros(2, 3).masked_fill(L.zeros(3, 2, dtype=L.bool), 1.0)),
    ("unflatten", lambda L: L.zeros(6).unflatten(0, (4, 2))),
])
def test_shape_and_index_errors_have_torch_types(name, make):
    with pytest.raises(Exception) as expected:
        make(torch)
    with pytest.raises(expected.type):
        make(dtorch)


# ---- edge shapes, layouts and dtypes (the audit of issue 3's test list) -------------------------------------------


def test_view_reshape_flatten_unflatten_edge_shapes():
    check_op(lambda x: x.unflatten(0, (2, 2)), None, [(4, 3)], noncontiguous=True)
    check_op(lambda x: x.unflatten(1, (3, 1)), None, [(0, 3)])
    check_op(lambda x: x.unflatten(0, (0, 2)), None, [(0, 3)])
    check_op(lambda x: x.view(1), None, [()])
    check_op(lambda x: x.view(-1), None, [()])
    check_op(lambda x: x.view(3, 0), None, [(0, 3)])
    check_op(lambda x: x.view(-1, 3), None, [(0, 3)])
    check_op(lambda x: x.flatten(0, -1), None, [()])
    check_op(lambda x: x.flatten(0, 1), None, [(2, 0, 3)])
    check_op(lambda x: x.reshape(2, -1), None, [ints((3, 4))])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError):
            lib.zeros(0, 3).reshape(0, -1)  # -1 is ambiguous for an empty tensor


def test_permutations_edge_shapes():
    check_op(lambda x: x.permute(1, 0), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.transpose(0, -1), None, [()])
    check_op(lambda x: x.transpose(0, 0), None, [(3,)])
    check_op(lambda x: x.mT, None, [(2, 0, 3)])
    check_op(lambda x: x.t(), None, [(0, 3)])
    check_op(lambda x: x.movedim((0, 1), (2, 0)), None, [(2, 3, 4)])
    check_op(lambda x: x.permute(2, 0, 1), None, [ints((2, 3, 4))])


def test_squeeze_unsqueeze_expand_repeat_edge_shapes():
    check_op(lambda x: x.squeeze(), None, [(1, 0, 1)])
    check_op(lambda x: x.unsqueeze(1).squeeze(1), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.squeeze((-1, 0)), None, [(1, 3, 1)])
    check_op(lambda x: x.unsqueeze(1), None, [(0, 3)])
    check_op(lambda x: x.expand(2, 3), None, [()])
    check_op(lambda x, y: x.expand_as(y), None, [(3, 1), (3, 4)], noncontiguous=True)
    check_op(lambda x, y: x.expand_as(y), None, [(), (3, 4)])
    check_op(lambda x, y: x.expand_as(y), None, [(1, 3), (0, 3)])
    check_op(lambda x: x.repeat(2, 3), None, [(0, 3)])
    check_op(lambda x: x.repeat(2, 1, 1, 2), None, [(2, 3)])
    check_op(lambda x: x.expand(2, 3).contiguous(), None, [(1, 3)])
    check_op(lambda x: x.contiguous(), None, [()])
    check_op(lambda x: x.contiguous(), None, [(0, 3)])


def test_cat_stack_promote_and_edge_shapes():
    check_op(lambda a, b: dtorch.cat([a, b]), lambda a, b: torch.cat([a, b]),
             [ints((2,), dtype=np.int32), np.array([True, False])])
    check_op(lambda a, b: dtorch.cat([a, b]), lambda a, b: torch.cat([a, b]),
             [np.ones(2, dtype=np.float16), np.ones(2, dtype=np.float32)])
    check_op(lambda a, b: dtorch.cat([a, b]), lambda a, b: torch.cat([a, b]), [(0,), (2, 3)])  # legacy empty 1-D
    check_op(lambda a: dtorch.cat([a]), lambda a: torch.cat([a]), [(2, 3)])
    check_op(lambda a, b: dtorch.cat([a, b], 0), lambda a, b: torch.cat([a, b], 0), [(2, 3), (4, 3)],
             noncontiguous=True)
    check_op(lambda a, b, c: dtorch.stack([a, b, c], 1), lambda a, b, c: torch.stack([a, b, c], 1),
             [(2, 3), (2, 3), (2, 3)], noncontiguous=True)
    check_op(lambda a, b: dtorch.stack([a, b]), lambda a, b: torch.stack([a, b]), [ints((2,)), (2,)])
    check_op(lambda a, b: dtorch.stack([a, b]), lambda a, b: torch.stack([a, b]),
             [np.ones(2, dtype=np.float16), np.ones(2, dtype=np.float64)])


def test_split_chunk_flip_roll_narrow_edge_shapes():
    check_op(lambda x: x.split([1, 3], 1), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.chunk(2, 1), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.chunk(10), None, [(3,)])
    check_op(lambda x: x.flip(1), None, [(0, 3)])
    check_op(lambda x: x.flip((0, 2)), None, [(2, 3, 4)], noncontiguous=True)
    check_op(lambda x: x.roll(2), None, [(0, 3)])
    check_op(lambda x: x.roll((-1, 5), (1, 0)), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.roll(3), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.roll(1, 0), None, [ints((4,))])
    check_op(lambda x: x.narrow(-1, 1, 2), None, [(2, 3, 4)])
    check_op(lambda x: x.narrow(0, 0, 0), None, [(0, 3)])
    check_op(lambda x: x.narrow(0, dtorch.tensor(1) if isinstance(x, dtorch.Tensor) else torch.tensor(1), 2), None,
             [(4, 3)])
    for lib in (torch, dtorch):
        for make in (lambda: lib.zeros(()).split(1), lambda: lib.zeros(()).chunk(2),
                     lambda: lib.cat([lib.zeros(()), lib.zeros(())])):
            with pytest.raises(RuntimeError, match="(expects at least a 1-dimensional|zero-dimensional) tensor"):
                make()
        with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
            lib.zeros(()).unbind()


@pytest.mark.parametrize("name, make", [
    ("narrow negative length", lambda L: L.zeros(3).narrow(0, 0, -1)),
    ("roll shifts and dims differ", lambda L: L.zeros(3, 3).roll((1, 2), (0,))),
    ("flip repeated dim", lambda L: L.zeros(3, 3).flip((0, 0))),
    ("movedim repeated dim", lambda L: L.zeros(2, 3).movedim((0, 0), (0, 1))),
    ("cat of nothing", lambda L: L.cat([])),
    ("split 0-d", lambda L: L.zeros(()).split(1)),
    ("chunk 0-d", lambda L: L.zeros(()).chunk(2)),
    ("unbind 0-d", lambda L: L.zeros(()).unbind()),
    ("outer of a matrix", lambda L: L.zeros(2, 2).outer(L.zeros(2))),
    ("masked_select integer mask", lambda L: L.zeros(3).masked_select(L.zeros(3, dtype=L.int64))),
    ("where integer condition", lambda L: L.where(L.zeros(3, dtype=L.int64), L.zeros(3), L.ones(3))),
    ("index_select matrix index", lambda L: L.zeros(2, 3).index_select(1, L.zeros(2, 2, dtype=L.int64))),
    ("index_select float index", lambda L: L.zeros(2, 3).index_select(1, L.zeros(2))),
    ("scatter src dtype", lambda L: L.zeros(2, 3).scatter(1, L.zeros(2, 3, dtype=L.int64),
                                                          L.ones(2, 3, dtype=L.float64))),
    ("arange to nan", lambda L: L.arange(0, float("nan"))),
])
def test_errors_match_torch_in_type_and_message(name, make):
    with pytest.raises(Exception) as expected:
        make(torch)
    with pytest.raises(expected.type) as actual:
        make(dtorch)
    assert str(actual.value).split(":")[0] == str(expected.value).split(":")[0]


@pytest.mark.parametrize("source, target", [("float32", "int32"), ("float32", "int16"), ("float32", "float64"),
                                            ("int64", "float32"), ("uint8", "int8"), ("float16", "int16")])
def test_view_as_dtype_matches_torch(source, target):
    values = np.arange(-4, 4).astype(source).reshape(2, 4)
    ours = dtorch.tensor(values).view(getattr(dtorch, target))
    theirs = torch.tensor(values).view(getattr(torch, target))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert tuple(ours.shape) == tuple(theirs.shape)


def test_view_as_dtype_shares_memory_and_checks_sizes():
    x = dtorch.tensor([1.0, -2.0], requires_grad=True)
    bits = x.view(dtorch.int32)
    assert not bits.requires_grad
    y = dtorch.tensor([1.0, 2.0])
    alias = y.view(dtorch.int32)
    y.mul_(2)
    np.testing.assert_array_equal(alias.numpy(), torch.tensor([2.0, 4.0]).view(torch.int32).numpy())
    for lib in (dtorch, torch):
        with pytest.raises(RuntimeError, match="must be divisible by 2"):
            lib.ones(3).view(lib.float64)
        with pytest.raises(RuntimeError, match="stride\\(-1\\) must be 1"):
            lib.ones(4, 4).t().view(lib.float64)


def test_shape_helpers():
    check_op(lambda x: x.tile((2, 1, 2)), None, [(3, 4)])
    check_op(lambda x: x.tile((2,)), None, [(3, 4)])
    check_op(lambda x: x.repeat_interleave(2), None, [(3, 2)])
    check_op(lambda x: x.repeat_interleave(3, dim=1), None, [(3, 2)], noncontiguous=True)
    check_op(lambda x: x.repeat_interleave(x.new_tensor([1, 0, 2]).long(), dim=0), None, [(3, 2)])
    np.testing.assert_array_equal(dtorch.repeat_interleave(dtorch.tensor([2, 0, 1])).numpy(),
                                  torch.repeat_interleave(torch.tensor([2, 0, 1])).numpy())
    check_op(lambda x: x.ravel(), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.moveaxis(0, -1), None, [(2, 3, 4)])
    for indexing in ("ij", "xy"):
        check_op(lambda a, b, c: sum(g * (i + 1) for i, g in enumerate(
            (dtorch if isinstance(a, dtorch.Tensor) else torch).meshgrid(a, b, c, indexing=indexing))),
            None, [(3,), (4,), (2,)])
    check_op(lambda a, b: sum((dtorch if isinstance(a, dtorch.Tensor) else torch).broadcast_tensors(a, b)),
             None, [(3, 1), (4,)])
    with pytest.raises(RuntimeError, match=r"\[3, 2\], \[4\]"):
        dtorch.broadcast_tensors(dtorch.ones(3, 2), dtorch.ones(4))


@pytest.mark.parametrize("name, shape, sections", [
    ("hsplit", (2, 6), 3), ("hsplit", (2, 6), [1, 4]), ("hsplit", (6,), 2), ("hsplit", (2, 6, 2), [5]),
    ("vsplit", (4, 3), 2), ("vsplit", (5, 3), [2, 3]), ("dsplit", (2, 2, 6), 3), ("dsplit", (1, 2, 6, 2), [2]),
])
def test_hsplit_vsplit_dsplit_match_torch(name, shape, sections):
    check_op(lambda x: getattr(x, name)(sections), None, [shape])
    check_op(lambda x: getattr(torch if isinstance(x, torch.Tensor) else dtorch, name)(x, sections), None, [shape])


@pytest.mark.parametrize("name, shape, sections", [
    ("hsplit", (2, 5), 2), ("vsplit", (5, 2), 2), ("vsplit", (4,), 2), ("dsplit", (2, 4), 2), ("hsplit", (2, 4), 0),
])
def test_hsplit_vsplit_dsplit_errors_match_torch(name, shape, sections):
    theirs = torch.zeros(shape)
    with pytest.raises(RuntimeError) as expected:
        getattr(theirs, name)(sections)
    with pytest.raises(RuntimeError) as ours:
        getattr(dtorch.zeros(shape), name)(sections)
    assert str(ours.value) == str(expected.value)


def test_resolve_conj_and_resolve_neg_give_the_values_torch_gives():
    values = np.array([1 + 2j, -3 - 1j])
    for method in ("resolve_conj", "resolve_neg"):
        ours = getattr(dtorch.tensor(values).conj(), method)()
        theirs = getattr(torch.tensor(values).conj(), method)()
        np.testing.assert_array_equal(ours.numpy(), theirs.resolve_conj().resolve_neg().numpy())
    assert not dtorch.tensor(values).conj().is_conj() and not dtorch.tensor([1.0]).neg().is_neg()
