"""``dtorch.nn.utils.rnn`` and recurrent layers on ``PackedSequence`` inputs, against PyTorch on the same data.

Every function is run by both libraries on the same float64 arrays; the tests compare values, index tensors and
error messages, then back-propagate the same random weighting of every output and compare input gradients. The
module tests copy torch's weights into dtorch (as tests/nn/test_rnn.py does) and compare the packed output, h_n,
c_n and the gradients of the input, the initial states and every parameter.
"""

import numpy as np
import pytest
import torch
from torch.nn.utils import rnn as torch_rnn

import dtorch
from dtorch import nn
from dtorch.nn.utils import rnn
from dtorch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from helpers import assert_close, copy_weights

TOL = dict(rtol=1e-9, atol=1e-10)


def _rng():
    return np.random.default_rng(1234)


def _leaves(arrays):
    return ([torch.tensor(a, requires_grad=True) for a in arrays],
            [dtorch.tensor(a, requires_grad=True) for a in arrays])


def _backward(d_outputs, t_outputs):
    """Back-propagate one random weighting of every pair of outputs through both libraries."""
    rng = _rng()
    d_loss = t_loss = 0
    for d_value, t_value in zip(d_outputs, t_outputs):
        weight = rng.standard_normal(tuple(t_value.shape))
        d_loss = d_loss + (d_value * dtorch.tensor(weight)).sum()
        t_loss = t_loss + (t_value * torch.tensor(weight)).sum()
    d_loss.backward()
    t_loss.backward()


def _grads_close(d_leaves, t_leaves):
    for i, (d_leaf, t_leaf) in enumerate(zip(d_leaves, t_leaves)):
        assert_close(d_leaf.grad, t_leaf.grad, what=f"gradient of input {i}", **TOL)


def _packed_close(ours, theirs, check_order=True):
    assert isinstance(ours, PackedSequence)
    assert ours._fields == theirs._fields
    assert_close(ours.batch_sizes, theirs.batch_sizes, what="batch_sizes", **TOL)
    if check_order:
        assert_close(ours.data, theirs.data, what="data", **TOL)
        for name in ("sorted_indices", "unsorted_indices"):
            if getattr(theirs, name) is None:
                assert getattr(ours, name) is None, name
            else:
                assert_close(getattr(ours, name), getattr(theirs, name), what=name, **TOL)


def _same_error(d_call, t_call):
    """Both calls raise the same exception type with the same message."""
    with pytest.raises(Exception) as t_info:
        t_call()
    with pytest.raises(type(t_info.value)) as d_info:
        d_call()
    assert str(d_info.value) == str(t_info.value)


# ---- packing and padding ------------------------------------------------------------------------------------------

# distinct lengths (so the sort order is unambiguous), given sorted and unsorted
LENGTHS = {"sorted": [6, 4, 3, 1], "unsorted": [3, 6, 1, 4]}


@pytest.mark.parametrize("order", ["sorted", "unsorted"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("trailing", [(), (3,), (2, 3)], ids=["0d", "1d", "2d"])
def test_pack_then_pad_matches_torch(order, batch_first, trailing):
    lengths = LENGTHS[order]
    steps, batch = 7, len(lengths)  # padded longer than the longest sequence
    shape = ((batch, steps) if batch_first else (steps, batch)) + trailing
    (t_x,), (d_x,) = _leaves([_rng().standard_normal(shape)])
    enforce = order == "sorted"
    t_packed = torch_rnn.pack_padded_sequence(t_x, torch.tensor(lengths), batch_first, enforce)
    d_packed = pack_padded_sequence(d_x, dtorch.tensor(lengths), batch_first, enforce)
    _packed_close(d_packed, t_packed)
    t_padded, t_lengths = torch_rnn.pad_packed_sequence(t_packed, batch_first, padding_value=-2.5, total_length=8)
    d_padded, d_lengths = rnn.pad_packed_sequence(d_packed, batch_first, padding_value=-2.5, total_length=8)
    assert_close(d_padded, t_padded, what="padded", **TOL)
    assert_close(d_lengths, t_lengths, what="lengths", **TOL)
    assert d_lengths.device.type == "cpu"
    _backward([d_packed.data, d_padded], [t_packed.data, t_padded])
    _grads_close([d_x], [t_x])


def test_pack_with_list_lengths_and_default_total_length():
    x = _rng().standard_normal((5, 3, 2))
    t_packed = torch_rnn.pack_padded_sequence(torch.tensor(x), [5, 2, 2])
    d_packed = pack_padded_sequence(dtorch.tensor(x), [5, 2, 2])
    _packed_close(d_packed, t_packed)
    t_padded, _ = torch_rnn.pad_packed_sequence(t_packed, batch_first=True)
    d_padded, _ = rnn.pad_packed_sequence(d_packed, batch_first=True)
    assert_close(d_padded, t_padded, **TOL)


def test_ties_round_trip():
    """With equal lengths the sorted order may differ from torch's (dtorch sorts stably); the padded result and
    the lengths may not."""
    lengths = [2, 3, 2, 3, 1]
    x = _rng().standard_normal((3, 5, 2))
    d_packed = pack_padded_sequence(dtorch.tensor(x), lengths, enforce_sorted=False)
    t_packed = torch_rnn.pack_padded_sequence(torch.tensor(x), lengths, enforce_sorted=False)
    _packed_close(d_packed, t_packed, check_order=False)
    assert d_packed.sorted_indices.tolist() == [1, 3, 0, 2, 4]
    d_padded, d_lengths = rnn.pad_packed_sequence(d_packed)
    t_padded, t_lengths = torch_rnn.pad_packed_sequence(t_packed)
    assert_close(d_padded, t_padded, **TOL)
    assert d_lengths.tolist() == lengths == t_lengths.tolist()


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side):
    rng = _rng()
    arrays = [rng.standard_normal((length, 2, 3)) for length in (3, 5, 1, 0, 5)]
    t_seqs, d_seqs = _leaves(arrays)
    t_out = torch_rnn.pad_sequence(t_seqs, batch_first, 1.5, padding_side)
    d_out = rnn.pad_sequence(d_seqs, batch_first, 1.5, padding_side)
    assert_close(d_out, t_out, **TOL)
    _backward([d_out], [t_out])
    _grads_close(d_seqs, t_seqs)


def test_pad_sequence_of_integers_and_of_a_tensor():
    seqs = [np.array([1, 2, 3]), np.array([4])]
    assert_close(rnn.pad_sequence([dtorch.tensor(a) for a in seqs], padding_value=-1),
                 torch_rnn.pad_sequence([torch.tensor(a) for a in seqs], padding_value=-1), **TOL)
    stacked = _rng().standard_normal((3, 4))
    assert_close(rnn.pad_sequence(dtorch.tensor(stacked)), torch_rnn.pad_sequence(torch.tensor(stacked)), **TOL)


@pytest.mark.parametrize("enforce_sorted", [True, False], ids=["sorted", "unsorted"])
def test_pack_and_unpack_sequence_match_torch(enforce_sorted):
    rng = _rng()
    lengths = (5, 4, 2, 1) if enforce_sorted else (2, 5, 1, 4)
    arrays = [rng.standard_normal((length, 3)) for length in lengths]
    t_seqs, d_seqs = _leaves(arrays)
    t_packed = torch_rnn.pack_sequence(t_seqs, enforce_sorted)
    d_packed = rnn.pack_sequence(d_seqs, enforce_sorted)
    _packed_close(d_packed, t_packed)
    t_back = torch_rnn.unpack_sequence(t_packed)
    d_back = rnn.unpack_sequence(d_packed)
    assert len(d_back) == len(t_back)
    for d_value, t_value in zip(d_back, t_back):
        assert_close(d_value, t_value, **TOL)
    _backward(d_back + [d_packed.data], t_back + [t_packed.data])
    _grads_close(d_seqs, t_seqs)


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
def test_unpad_sequence_matches_torch(batch_first):
    x = _rng().standard_normal((3, 4, 2) if batch_first else (4, 3, 2))
    lengths = [4, 1, 3]
    (t_x,), (d_x,) = _leaves([x])
    # torch transposes its argument in place when batch_first=False: give it a non-leaf of its own
    t_out = torch_rnn.unpad_sequence(t_x * 1, torch.tensor(lengths), batch_first)
    d_out = rnn.unpad_sequence(d_x, dtorch.tensor(lengths), batch_first)
    assert tuple(d_x.shape) == x.shape  # dtorch leaves its argument alone
    for d_value, t_value in zip(d_out, t_out):
        assert_close(d_value, t_value, **TOL)
    _backward(d_out, t_out)
    _grads_close([d_x], [t_x])


def test_packed_sequence_is_a_named_tuple():
    data = dtorch.tensor([1.0, 2.0, 3.0])
    sizes = dtorch.tensor([2, 1])
    order = dtorch.tensor([1, 0])
    packed = PackedSequence(data, sizes, order)
    assert packed.unsorted_indices.tolist() == [1, 0]
    data_, sizes_, sorted_, unsorted_ = packed
    assert data_ is data and sizes_ is sizes and sorted_ is order
    assert PackedSequence((data, sizes)).batch_sizes is sizes
    assert repr(PackedSequence((data, sizes))).startswith("PackedSequence(data=tensor(")
    assert rnn.invert_permutation(dtorch.tensor([2, 0, 3, 1])).tolist() == [1, 3, 0, 2]
    assert rnn.invert_permutation(None) is None
    with pytest.raises(AssertionError, match="list or tuple of length 2"):
        PackedSequence(data)


def test_packed_sequence_to():
    packed = rnn.pack_sequence([dtorch.tensor([1.0, 2.0]), dtorch.tensor([3.0])])
    assert packed.to(dtorch.float32) is packed
    assert packed.to("cpu") is packed
    doubled = packed.double()
    assert isinstance(doubled, PackedSequence) and doubled.data.dtype == dtorch.float64
    assert doubled.batch_sizes is packed.batch_sizes
    assert packed.long().data.tolist() == [1, 3, 2]
    assert not packed.is_cuda


def test_packing_errors_match_torch():
    x = np.zeros((4, 3, 2))
    cases = [
        ([2, 3, 1], {}),  # not sorted with enforce_sorted=True
        ([3, 2, 0], {}),
        ([3, 2, -1], {"enforce_sorted": False}),
        ([3, 2], {}),
    ]
    for lengths, kwargs in cases:
        _same_error(lambda: pack_padded_sequence(dtorch.tensor(x), lengths, **kwargs),
                    lambda: torch_rnn.pack_padded_sequence(torch.tensor(x), lengths, **kwargs))
    _same_error(lambda: pack_padded_sequence(dtorch.tensor(x), dtorch.tensor([[3, 2, 1]])),
                lambda: torch_rnn.pack_padded_sequence(torch.tensor(x), torch.tensor([[3, 2, 1]])))
    _same_error(lambda: pack_padded_sequence(dtorch.zeros(4, 0, 2), []),
                lambda: torch_rnn.pack_padded_sequence(torch.zeros(4, 0, 2), []))
    _same_error(lambda: rnn.pack_sequence([dtorch.zeros(2), dtorch.zeros(3)]),
                lambda: torch_rnn.pack_sequence([torch.zeros(2), torch.zeros(3)]))
    with pytest.raises(RuntimeError, match="longest length is 5"):
        pack_padded_sequence(dtorch.tensor(x), [5, 2, 1])
    d_packed = pack_padded_sequence(dtorch.tensor(x), [3, 2, 1])
    t_packed = torch_rnn.pack_padded_sequence(torch.tensor(x), [3, 2, 1])
    _same_error(lambda: rnn.pad_packed_sequence(d_packed, total_length=2),
                lambda: torch_rnn.pad_packed_sequence(t_packed, total_length=2))


def test_pad_sequence_errors_match_torch():
    _same_error(lambda: rnn.pad_sequence([dtorch.zeros(2)], padding_side="up"),
                lambda: torch_rnn.pad_sequence([torch.zeros(2)], padding_side="up"))
    _same_error(lambda: rnn.pad_sequence([]), lambda: torch_rnn.pad_sequence([]))
    _same_error(lambda: rnn.pad_sequence(3), lambda: torch_rnn.pad_sequence(3))


# ---- recurrent layers on packed input ------------------------------------------------------------------------------

KINDS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]
CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=1, bidirectional=True, batch_first=True),
    dict(num_layers=2, bias=False),
    dict(num_layers=2, bidirectional=True),
]


def _pair(name, *args, **kwargs):
    torch.manual_seed(0)  # torch draws the weights both share: the same on every run
    torch_module = getattr(torch.nn, name)(*args, **kwargs).double()
    dtorch_module = getattr(nn, name)(*args, **kwargs).double()
    copy_weights(torch_module, dtorch_module)
    return torch_module, dtorch_module


def _compare_packed_module(kind, extra, config, enforce_sorted, with_state, lengths, hidden=4):
    """Pack the same padded input in both libraries, run both modules, compare everything, then gradients."""
    input_size, batch, steps = 3, len(lengths), max(lengths) + 1
    torch_module, dtorch_module = _pair(kind, input_size, 4, **extra, **config)
    batch_first = config.get("batch_first", False)
    rng = _rng()
    arrays = [rng.standard_normal((batch, steps, input_size) if batch_first else (steps, batch, input_size))]
    if with_state:
        layers = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
        arrays.append(rng.standard_normal((layers, batch, hidden)))
        if kind == "LSTM":
            arrays.append(rng.standard_normal((layers, batch, 4)))
    t_leaves, d_leaves = _leaves(arrays)
    t_packed = torch_rnn.pack_padded_sequence(t_leaves[0], lengths, batch_first, enforce_sorted)
    d_packed = pack_padded_sequence(d_leaves[0], lengths, batch_first, enforce_sorted)
    t_state = d_state = None
    if with_state:
        t_state = t_leaves[1] if kind != "LSTM" else tuple(t_leaves[1:])
        d_state = d_leaves[1] if kind != "LSTM" else tuple(d_leaves[1:])
    t_out, t_final = torch_module(t_packed, t_state)
    d_out, d_final = dtorch_module(d_packed, d_state)
    _packed_close(d_out, t_out)
    t_finals = list(t_final) if kind == "LSTM" else [t_final]
    d_finals = list(d_final) if kind == "LSTM" else [d_final]
    for name, d_value, t_value in zip(("h_n", "c_n"), d_finals, t_finals):
        assert_close(d_value, t_value, what=name, **TOL)
    t_padded, _ = torch_rnn.pad_packed_sequence(t_out, batch_first)
    d_padded, _ = rnn.pad_packed_sequence(d_out, batch_first)
    assert_close(d_padded, t_padded, what="padded output", **TOL)
    _backward([d_out.data] + d_finals, [t_out.data] + t_finals)
    _grads_close(d_leaves, t_leaves)
    d_params = dict(dtorch_module.named_parameters())
    for name, t_param in torch_module.named_parameters():
        assert_close(d_params[name].grad, t_param.grad, what=name, **TOL)


@pytest.mark.parametrize("kind,extra", KINDS, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("config", CONFIGS, ids=["plain", "bidir_batchfirst", "2layer_nobias", "2layer_bidir"])
@pytest.mark.parametrize("enforce_sorted", [True, False], ids=["sorted", "unsorted"])
def test_packed_module_matches_torch(kind, extra, config, enforce_sorted):
    # equal lengths make runs of equal batch size; unsorted input also gets initial states to permute
    lengths = [5, 5, 3, 2, 2, 1] if enforce_sorted else [2, 5, 1, 3, 6]
    _compare_packed_module(kind, extra, config, enforce_sorted, with_state=not enforce_sorted, lengths=lengths)


@pytest.mark.parametrize("config", [dict(num_layers=1), dict(num_layers=2, bidirectional=True, batch_first=True)],
                         ids=["plain", "2layer_bidir_batchfirst"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_packed_lstm_with_projections(config, with_state):
    _compare_packed_module("LSTM", {"proj_size": 2}, config, False, with_state, lengths=[3, 4, 1], hidden=2)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_packed_single_length_and_single_sequence(kind):
    _compare_packed_module(kind, {}, dict(num_layers=2, bidirectional=True), True, True, lengths=[3, 3, 3])
    _compare_packed_module(kind, {}, dict(bidirectional=True), False, False, lengths=[4])


def test_packed_module_errors_match_torch():
    torch_module, dtorch_module = _pair("GRU", 2, 3)
    x = np.zeros((4, 3, 2))
    t_packed = torch_rnn.pack_padded_sequence(torch.tensor(x), [3, 2, 1])
    d_packed = pack_padded_sequence(dtorch.tensor(x), [3, 2, 1])
    _same_error(lambda: dtorch_module(d_packed, dtorch.zeros(1, 2, 3, dtype=dtorch.float64)),
                lambda: torch_module(t_packed, torch.zeros(1, 2, 3, dtype=torch.float64)))
    _same_error(lambda: dtorch_module(PackedSequence(d_packed.data.reshape(6, 1, 2), d_packed.batch_sizes)),
                lambda: torch_module(torch_rnn.PackedSequence(t_packed.data.reshape(6, 1, 2), t_packed.batch_sizes)))
    _same_error(lambda: dtorch_module(PackedSequence(dtorch.zeros(6, 3, dtype=dtorch.float64), d_packed.batch_sizes)),
                lambda: torch_module(torch_rnn.PackedSequence(torch.zeros(6, 3, dtype=torch.float64),
                                                              t_packed.batch_sizes)))


def test_packed_module_dropout():
    """Dropout between layers applies to the packed rows in training and is off in eval mode."""
    torch_module, dtorch_module = _pair("LSTM", 3, 4, num_layers=2, dropout=0.5)
    x = _rng().standard_normal((5, 2, 3))
    d_packed = pack_padded_sequence(dtorch.tensor(x), [5, 3])
    t_packed = torch_rnn.pack_padded_sequence(torch.tensor(x), [5, 3])
    dtorch_module.eval()
    torch_module.eval()
    _packed_close(dtorch_module(d_packed)[0], torch_module(t_packed)[0])
    dtorch_module.train()
    trained, (h_n, _) = dtorch_module(d_packed)
    assert tuple(trained.data.shape) == (8, 4) and tuple(h_n.shape) == (2, 2, 4)
    eval_out = dtorch_module.eval()(d_packed)[0].data.detach().numpy()
    assert not np.allclose(trained.data.detach().numpy(), eval_out)
