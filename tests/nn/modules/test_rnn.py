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
from helpers import check_module

RNG = np.random.default_rng(1234)
TOL = dict(rtol=1e-9, atol=1e-10)


def _check(kind, *args, x, states=None, modes=("train", "eval"), **kwargs):
    """``check_module`` of ``nn.<kind>(*args, **kwargs)`` in float64 on ``x`` and the initial ``states`` (h, or h
    and c): every output and final state, then the gradients of the input, the states and every parameter."""
    inputs = [x] if states is None else [x, states[0]] if len(states) == 1 else [x, tuple(states)]
    return check_module(lambda nn_: getattr(nn_, kind)(*args, **kwargs), inputs=inputs, dtype="float64", modes=modes,
                        **TOL)


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
    shape = (batch, steps, input_size) if config.get("batch_first") else (steps, batch, input_size)
    x = RNG.standard_normal(shape)
    states = None
    if with_state:
        layers = config["num_layers"] * (2 if config.get("bidirectional") else 1)
        count = 2 if kind == "LSTM" else 1
        states = [RNG.standard_normal((layers, batch, hidden)) for _ in range(count)]
    _check(kind, input_size, hidden, x=x, states=states, **extra, **config)


@pytest.mark.parametrize("config", [
    dict(num_layers=1),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(num_layers=2, bias=False),
], ids=["plain", "2layer_bidir_batchfirst", "2layer_nobias"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_lstm_with_projections(config, with_state):
    batch, steps = 2, 4
    x = RNG.standard_normal((batch, steps, 5) if config.get("batch_first") else (steps, batch, 5))
    states = None
    if with_state:
        layers = config["num_layers"] * (2 if config.get("bidirectional") else 1)
        states = [RNG.standard_normal((layers, batch, 3)), RNG.standard_normal((layers, batch, 6))]
    _check("LSTM", 5, 6, x=x, states=states, proj_size=3, **config)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_unbatched_input(kind):
    x = RNG.standard_normal((6, 4))
    states = [RNG.standard_normal((4, 5)) for _ in range(2 if kind == "LSTM" else 1)]
    _check(kind, 4, 5, x=x, states=states, num_layers=2, bidirectional=True)
    _check(kind, 4, 5, x=x, num_layers=2, bidirectional=True)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_eval_mode_and_dropout_between_layers(kind):
    x = RNG.standard_normal((5, 2, 4))
    # dropout is off in eval mode
    _, dtorch_module = _check(kind, 4, 8, x=x, modes=("eval",), num_layers=3, dropout=0.5, bidirectional=kind == "GRU")
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
    lead = (3,) if batched else ()
    x = RNG.standard_normal(lead + (4,))
    states = None
    if with_state:
        states = [RNG.standard_normal(lead + (6,)) for _ in range(2 if kind == "LSTMCell" else 1)]
    _check(kind, 4, 6, x=x, states=states, **extra)


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
