"""RNN, LSTM, GRU and their cells against PyTorch on identical weights (copied through state_dicts).

Each case runs both libraries in float64 on the same input and initial states, compares the outputs and final
states, then back-propagates the same random weighting of every output and compares the gradients of the
input, the initial states and every parameter.
"""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn

RNG = np.random.default_rng(1234)
TOL = dict(rtol=1e-9, atol=1e-10)


@pytest.fixture(autouse=True)
def _seeded():
    """Torch draws the initial weights that both libraries then share: seed it so every run is the same."""
    torch.manual_seed(0)
    dtorch.manual_seed(0)


def _copy_weights(source, target):
    """Load a torch module's state_dict into a dtorch module through NumPy arrays."""
    state = {name: dtorch.tensor(value.detach().numpy()) for name, value in source.state_dict().items()}
    target.load_state_dict(state)


def _pair(name, *args, **kwargs):
    torch_module = getattr(torch.nn, name)(*args, **kwargs).double()
    dtorch_module = getattr(nn, name)(*args, **kwargs).double()
    _copy_weights(torch_module, dtorch_module)
    return torch_module, dtorch_module


def _leaf(array, library):
    if array is None:
        return None
    return library.tensor(array, requires_grad=True)


def _flatten(result):
    """(output, h) or (output, (h, c)) or a cell's h or (h, c) as a flat list."""
    if isinstance(result, (tuple, list)):
        flat = []
        for item in result:
            flat.extend(_flatten(item))
        return flat
    return [result]


def _compare(torch_module, dtorch_module, input_array, state_arrays=None):
    """Run both modules, compare every output, then the gradients of inputs, states and parameters."""
    t_input, d_input = _leaf(input_array, torch), _leaf(input_array, dtorch)
    t_states = d_states = None
    if state_arrays is not None:
        t_states = [_leaf(a, torch) for a in state_arrays]
        d_states = [_leaf(a, dtorch) for a in state_arrays]
        if len(state_arrays) == 1:
            t_args, d_args = (t_input, t_states[0]), (d_input, d_states[0])
        else:
            t_args, d_args = (t_input, tuple(t_states)), (d_input, tuple(d_states))
    else:
        t_args, d_args = (t_input,), (d_input,)
    t_out = _flatten(torch_module(*t_args))
    d_out = _flatten(dtorch_module(*d_args))
    assert len(t_out) == len(d_out)
    t_loss = 0
    d_loss = 0
    for t_value, d_value in zip(t_out, d_out):
        assert tuple(d_value.shape) == tuple(t_value.shape)
        np.testing.assert_allclose(d_value.detach().numpy(), t_value.detach().numpy(), **TOL)
        weight = RNG.standard_normal(tuple(t_value.shape))
        t_loss = t_loss + (t_value * torch.tensor(weight)).sum()
        d_loss = d_loss + (d_value * dtorch.tensor(weight)).sum()
    t_loss.backward()
    d_loss.backward()
    np.testing.assert_allclose(d_input.grad.numpy(), t_input.grad.numpy(), **TOL)
    for t_state, d_state in zip(t_states or [], d_states or []):
        np.testing.assert_allclose(d_state.grad.numpy(), t_state.grad.numpy(), **TOL)
    d_params = dict(dtorch_module.named_parameters())
    for name, t_param in torch_module.named_parameters():
        np.testing.assert_allclose(d_params[name].grad.numpy(), t_param.grad.numpy(), err_msg=name, **TOL)


# ---- full-sequence modules ----------------------------------------------------------------------------------------

KINDS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]
CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(num_layers=2, bias=False),
    dict(num_layers=1, bidirectional=True),
]


@pytest.mark.parametrize("kind,extra", KINDS, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("config", CONFIGS, ids=["plain", "2layer_bidir_batchfirst", "2layer_nobias", "bidir"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_sequence_module_matches_torch(kind, extra, config, with_state):
    input_size, hidden, steps, batch = 5, 6, 7, 3
    torch_module, dtorch_module = _pair(kind, input_size, hidden, **extra, **config)
    assert list(dtorch_module.state_dict()) == list(torch_module.state_dict())
    shape = (batch, steps, input_size) if config.get("batch_first") else (steps, batch, input_size)
    x = RNG.standard_normal(shape)
    states = None
    if with_state:
        layers = config["num_layers"] * (2 if config.get("bidirectional") else 1)
        count = 2 if kind == "LSTM" else 1
        states = [RNG.standard_normal((layers, batch, hidden)) for _ in range(count)]
    _compare(torch_module, dtorch_module, x, states)


@pytest.mark.parametrize("config", [
    dict(num_layers=1),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(num_layers=2, bias=False),
], ids=["plain", "2layer_bidir_batchfirst", "2layer_nobias"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_lstm_with_projections(config, with_state):
    torch_module, dtorch_module = _pair("LSTM", 5, 6, proj_size=3, **config)
    assert list(dtorch_module.state_dict()) == list(torch_module.state_dict())
    batch, steps = 2, 4
    x = RNG.standard_normal((batch, steps, 5) if config.get("batch_first") else (steps, batch, 5))
    states = None
    if with_state:
        layers = config["num_layers"] * (2 if config.get("bidirectional") else 1)
        states = [RNG.standard_normal((layers, batch, 3)), RNG.standard_normal((layers, batch, 6))]
    _compare(torch_module, dtorch_module, x, states)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_unbatched_input(kind):
    torch_module, dtorch_module = _pair(kind, 4, 5, num_layers=2, bidirectional=True)
    x = RNG.standard_normal((6, 4))
    states = [RNG.standard_normal((4, 5)) for _ in range(2 if kind == "LSTM" else 1)]
    _compare(torch_module, dtorch_module, x, states)
    torch_module.zero_grad()
    dtorch_module.zero_grad()
    _compare(torch_module, dtorch_module, x)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_eval_mode_and_dropout_between_layers(kind):
    torch_module, dtorch_module = _pair(kind, 4, 8, num_layers=3, dropout=0.5, bidirectional=kind == "GRU")
    x = RNG.standard_normal((5, 2, 4))
    torch_module.eval()
    dtorch_module.eval()
    _compare(torch_module, dtorch_module, x)  # dropout is off in eval mode
    dtorch_module.train()
    d_x = dtorch.tensor(x)
    eval_out = dtorch_module.eval()(d_x)[0].detach().numpy()
    train_out = dtorch_module.train()(d_x)[0].detach().numpy()
    assert not np.allclose(train_out, eval_out)
    # the first layer sees no dropout: with one layer, train and eval agree
    single = getattr(nn, kind)(4, 8, num_layers=1).double().train()
    np.testing.assert_array_equal(single(d_x)[0].detach().numpy(), single.eval()(d_x)[0].detach().numpy())


def test_float32_default_dtype_and_shapes():
    lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True)
    output, (h_n, c_n) = lstm(dtorch.randn(3, 5, 10))
    assert output.dtype == dtorch.float32
    assert tuple(output.shape) == (3, 5, 20)
    assert tuple(h_n.shape) == tuple(c_n.shape) == (2, 3, 20)
    output.sum().backward()
    assert lstm.weight_ih_l0.grad.dtype == dtorch.float32


def test_parameter_layout_and_init_range():
    gru = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    reference = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    d_state, t_state = gru.state_dict(), reference.state_dict()
    assert list(d_state) == list(t_state)
    for name in t_state:
        assert tuple(d_state[name].shape) == tuple(t_state[name].shape), name
    bound = 1 / np.sqrt(4)
    for parameter in gru.parameters():
        values = parameter.detach().numpy()
        assert values.min() >= -bound and values.max() <= bound
        assert values.std() > 0.1 * bound  # not constant
    assert len(gru.all_weights) == 4 and len(gru.all_weights[0]) == 4
    assert repr(gru) == repr(reference)


def test_state_dict_moves_both_ways():
    d_lstm = nn.LSTM(3, 4, num_layers=2)
    t_lstm = torch.nn.LSTM(3, 4, num_layers=2)
    t_lstm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in d_lstm.state_dict().items()})
    x = RNG.standard_normal((5, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(d_lstm(dtorch.tensor(x))[0].detach().numpy(),
                               t_lstm(torch.tensor(x))[0].detach().numpy(), rtol=1e-5, atol=1e-6)


def test_errors():
    lstm = nn.LSTM(4, 5, num_layers=2)
    with pytest.raises(RuntimeError, match="input_size"):
        lstm(dtorch.zeros(3, 2, 6))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size"):
        lstm(dtorch.zeros(3, 2, 4), (dtorch.zeros(1, 2, 5), dtorch.zeros(1, 2, 5)))
    with pytest.raises(ValueError, match="2D or 3D"):
        lstm(dtorch.zeros(3, 2, 4, 1))
    with pytest.raises(ValueError, match="dropout"):
        nn.GRU(4, 5, dropout=1.5)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(4, 5, nonlinearity="sigmoid")
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(4, 5, dropout=0.2)


# ---- cells ----------------------------------------------------------------------------------------------------------

CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}), ("GRUCell", {}),
         ("LSTMCell", {"bias": False}), ("GRUCell", {"bias": False})]


@pytest.mark.parametrize("kind,extra", CELLS, ids=["rnn", "rnn_relu", "lstm", "gru", "lstm_nobias", "gru_nobias"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_cell_matches_torch(kind, extra, batched, with_state):
    torch_module, dtorch_module = _pair(kind, 4, 6, **extra)
    assert list(dtorch_module.state_dict()) == list(torch_module.state_dict())
    lead = (3,) if batched else ()
    x = RNG.standard_normal(lead + (4,))
    states = None
    if with_state:
        states = [RNG.standard_normal(lead + (6,)) for _ in range(2 if kind == "LSTMCell" else 1)]
    _compare(torch_module, dtorch_module, x, states)


def test_cell_unrolled_equals_sequence_module():
    """An LSTMCell stepped by hand with an LSTM's layer-0 weights gives the LSTM's output."""
    lstm = nn.LSTM(3, 4).double()
    cell = nn.LSTMCell(3, 4).double()
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    x = dtorch.tensor(RNG.standard_normal((5, 2, 3)))
    output, (h_n, c_n) = lstm(x)
    h = c = dtorch.zeros(2, 4, dtype=dtorch.float64)
    for t in range(5):
        h, c = cell(x[t], (h, c))
        np.testing.assert_allclose(h.detach().numpy(), output[t].detach().numpy(), **TOL)
    np.testing.assert_allclose(c.detach().numpy(), c_n[0].detach().numpy(), **TOL)



@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_learns_running_sum(kind):
    """A small recurrent model trained with dtorch.optim fits the sum of its input sequence."""
    from dtorch import optim

    dtorch.manual_seed(0)
    rnn = getattr(nn, kind)(1, 16, batch_first=True)
    head = nn.Linear(16, 1)
    params = list(rnn.parameters()) + list(head.parameters())
    optimizer = optim.Adam(params, lr=0.02)
    x = dtorch.tensor(RNG.uniform(-1, 1, (64, 8, 1)).astype(np.float32))
    target = x.sum(1)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        output, _ = rnn(x)
        loss = ((head(output[:, -1]) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]

@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_cuda_matches_cpu(kind):
    """The fused layer runs on CuPy arrays through ``xp``: same outputs and gradients as on the CPU."""
    import copy

    cpu = getattr(nn, kind)(4, 6, num_layers=2, bidirectional=True).double()
    gpu = copy.deepcopy(cpu).to("cuda")
    x = RNG.standard_normal((5, 3, 4))
    results = []
    for module, device in ((cpu, "cpu"), (gpu, "cuda")):
        inp = dtorch.tensor(x, device=device, requires_grad=True)
        output = module(inp)[0]
        output.sum().backward()
        results.append((output.detach().cpu().numpy(), inp.grad.cpu().numpy(),
                        module.weight_hh_l1_reverse.grad.cpu().numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(theirs, ours, rtol=1e-7, atol=1e-9)
