"""Recurrent layers: ``RNN`` (tanh or relu), ``LSTM``, ``GRU`` and their single-step ``RNNCell``, ``LSTMCell``,
``GRUCell``, with PyTorch's constructor arguments, parameter names and layouts.

Parameters are named ``weight_ih_l{k}{suffix}``, ``weight_hh_l{k}{suffix}``, ``bias_ih_l{k}{suffix}`` and
``bias_hh_l{k}{suffix}`` (``suffix`` is ``_reverse`` for the backward direction), stacked by gate in PyTorch's
order (i, f, g, o for the LSTM; r, z, n for the GRU), so a ``state_dict`` moves between torch and dtorch as is.
Every parameter starts uniform in ``(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.

Each layer and direction runs as one fused op (``dtorch.ops.rnn.RNNLayer``); the module only chains layers,
concatenates directions and applies dropout between layers. Weights are looked up by name on every call, so
``load_state_dict``, ``to()`` and parameter replacement need no extra bookkeeping (``flatten_parameters`` is a
no-op kept for scripts that call it). An LSTM with ``proj_size > 0`` adds ``weight_hr_l{k}{suffix}`` (P, H), as
PyTorch does.

``PackedSequence`` inputs (``dtorch.nn.utils.rnn``) run on the packed rows directly, as cuDNN does: the steps are
cut into segments over which ``batch_sizes`` is constant, each segment is one ``RNNLayer`` call on its rows
(``(steps, batch, features)``, contiguous in the packed layout), and a sequence leaves the running batch where its
segment ends, so its final state is the state at its own last step. The reverse direction walks the segments
from last to first, and a sequence joins the running batch (with its initial state) at its own last step. Cost:
every step is computed once, on only the sequences still running, but each layer and direction makes one op call
(and a few slices and one ``cat``) per distinct length in the batch, instead of one: with all lengths distinct
that is up to ``min(T, B)`` calls.
"""

import math
import numbers
import warnings

from dtorch._errors import type_name
from dtorch import factories, functional
from dtorch.nn import functional as F
from dtorch.nn import init
from dtorch.nn.modules.module import Module
from dtorch.nn.parameter import Parameter
from dtorch.nn.utils.rnn import PackedSequence
from dtorch.ops.rnn import GATES, RNNLayer
from dtorch.tensor import Tensor

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _rnn_layer(input, *tensors, mode, reverse):
    """``RNNLayer.apply``; a bfloat16 input runs the recurrence in float32 and its output is rounded once, as
    PyTorch's CPU kernels accumulate bfloat16 in float32 (NumPy's products would hand back float32 anyway)."""
    if input._array.dtype is functional._BFLOAT16:
        return functional._tensors_in_float32(
            lambda *cast: RNNLayer.apply(*cast, mode=mode, reverse=reverse), (input,) + tensors)
    return RNNLayer.apply(input, *tensors, mode=mode, reverse=reverse)


def _uniform_(tensor, bound):
    init.uniform_(tensor, -bound, bound)


class RNNBase(Module):
    """Base class of ``RNN``, ``LSTM`` and ``GRU``: parameters, argument checks and the layer loop.

    ``mode`` is ``'RNN_TANH'``, ``'RNN_RELU'``, ``'LSTM'`` or ``'GRU'``.

    >>> import dtorch
    >>> rnn = RNNBase('GRU', 4, 8, num_layers=2)
    >>> [name for name, _ in rnn.named_parameters()][:2]
    ['weight_ih_l0', 'weight_hh_l0']
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if mode not in GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}"
            )
        if not isinstance(hidden_size, int) or isinstance(hidden_size, bool):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        gate_size = GATES[mode] * hidden_size
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [("weight_ih", (gate_size, layer_input_size)),
                          ("weight_hh", (gate_size, real_hidden_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                names = []
                for kind, shape in shapes:
                    name = f"{kind}_l{layer}{suffix}"
                    setattr(self, name, Parameter(factories.empty(shape, device=device, dtype=dtype)))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias uniform in ``(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``, as in PyTorch."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            _uniform_(weight, bound)

    def flatten_parameters(self):
        """A no-op: dtorch keeps no flat weight buffer (kept so that scripts written for cuDNN run)."""

    @property
    def _flat_weights(self):
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if self.batch_first is not False:
            text += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            text += f", bidirectional={self.bidirectional}"
        return text

    # ---- forward --------------------------------------------------------------------------------------------------

    def _prepare(self, input, states):
        """Check shapes and bring ``input`` to (T, B, I) and each state to (L*D, B, H). Returns batched flag."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, not {type_name(input)}")
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        batched = input.dim() == 3
        if states is not None:
            what = "hx and cx" if len(states) == 2 else "hx"
            kind = "batched 3-D" if batched else "unbatched 2-D"
            for state in states:
                if state.dim() != input.dim():
                    raise RuntimeError(f"For {kind} input, {what} should also be {input.dim()}-D but got "
                                       f"{state.dim()}-D tensor")
        if not batched:
            input = input.unsqueeze(1)
            if states is not None:
                states = tuple(state.unsqueeze(1) for state in states)
        elif self.batch_first:
            input = input.transpose(0, 1)
        self._check_input(input)
        return input, self._initial_states(states, input.shape[1], input), batched

    def _check_input(self, input):
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {input.shape[-1]}"
            )
        weight = getattr(self, self._flat_weights_names[0])
        if input.dtype != weight.dtype:
            raise RuntimeError(f"input must have the type {weight.dtype}, got type {input.dtype}")

    def _initial_states(self, states, batch, input):
        """Check the given (L*D, B, H) states, or make zero ones like ``input``."""
        layers = self.num_layers * (2 if self.bidirectional else 1)
        expected = [(layers, batch, self.proj_size if self.proj_size > 0 else self.hidden_size)]
        if self.mode == "LSTM":
            expected.append((layers, batch, self.hidden_size))
        if states is None:
            return tuple(factories.zeros(shape, dtype=input.dtype, device=input.device) for shape in expected)
        names = ("hidden[0]", "hidden[1]") if self.mode == "LSTM" else ("hidden",)
        for state, shape, what in zip(states, expected, names):
            if tuple(state.shape) != shape:
                raise RuntimeError(f"Expected {what} size {shape}, got {list(state.shape)}")
        return states

    def _run(self, input, h0, c0, batch_sizes=None):
        """All layers and directions: output, h_n and c_n (or None).

        ``input`` is (T, B, I) when ``batch_sizes`` is None, else the (N, I) rows of a ``PackedSequence`` with
        those ``batch_sizes``; the output has the same layout with D*H features.
        """
        lstm = self.mode == "LSTM"
        num_directions = 2 if self.bidirectional else 1
        segments = None if batch_sizes is None else _segments(batch_sizes)
        layer_input = input
        h_finals = []
        c_finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(num_directions):
                index = layer * num_directions + direction
                reverse = direction == 1
                weights = self._layer_weights(index)
                c_start = c0[index] if lstm else None
                if segments is None:
                    output, h_last, c_last = self._layer(layer_input, h0[index], c_start, weights, reverse)
                else:
                    output, h_last, c_last = self._packed_layer(layer_input, segments, h0[index], c_start, weights,
                                                                reverse)
                outputs.append(output)
                h_finals.append(h_last)
                c_finals.append(c_last)
            layer_output = outputs[0] if num_directions == 1 else functional.cat(outputs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_output = F.dropout(layer_output, self.dropout, True)
            layer_input = layer_output
        h_n = functional.stack(h_finals, 0)
        c_n = functional.stack(c_finals, 0) if lstm else None
        return layer_input, h_n, c_n

    def _layer_weights(self, index):
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of layer-and-direction ``index``, None where absent."""
        names = self._all_weights[index]
        b_ih = getattr(self, names[2]) if self.bias else None
        b_hh = getattr(self, names[3]) if self.bias else None
        w_hr = getattr(self, names[-1]) if self.proj_size > 0 else None
        return getattr(self, names[0]), getattr(self, names[1]), b_ih, b_hh, w_hr

    def _layer(self, input, h0, c0, weights, reverse):
        """One direction of one layer over (T, B, I) ``input``: output (T, B, H), last h (B, H), last c or None.

        "Last" is the state after the final step taken: position T-1 going forward, position 0 in reverse.
        """
        steps, batch = input.shape[0], input.shape[1]
        w_ih, w_hh, b_ih, b_hh, w_hr = weights
        packed = _rnn_layer(input, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, mode=self.mode, reverse=reverse)
        # unpack the op's single output (see dtorch/ops/rnn.py): views, so gradients meet in ``packed``
        c_last = None
        if w_hr is not None:
            split = steps * batch * self.proj_size
            output = packed[:split].reshape(steps, batch, self.proj_size)
            c_last = packed[split:].reshape(batch, self.hidden_size)
        elif self.mode == "LSTM":
            output = packed[:steps]
            c_last = packed[steps]
        else:
            output = packed
        return output, (output[0] if reverse else output[steps - 1]), c_last

    def _packed_layer(self, data, segments, h0, c0, weights, reverse):
        """One direction of one layer over packed rows ``data`` (N, I); see the module docstring.

        Returns output rows (N, H) and the final h (B, H) and c (or None) of every sequence, each taken at the
        sequence's own last step (its first position in reverse).
        """
        lstm = c0 is not None
        outputs = [None] * len(segments)
        if not reverse:
            # the running batch shrinks: rows past a segment's batch have finished, their states are final
            h, c = h0, c0
            h_done, c_done = [], []
            for k, (start, steps, batch) in enumerate(segments):
                if h.shape[0] > batch:
                    h_done.append(h[batch:])
                    h = h[:batch]
                    if lstm:
                        c_done.append(c[batch:])
                        c = c[:batch]
                x = data[start:start + steps * batch].reshape(steps, batch, data.shape[-1])
                output, h, c = self._layer(x, h, c, weights, False)
                outputs[k] = output.reshape(steps * batch, output.shape[-1])
            # the finished rows were collected from the back of the batch forward
            h_final = functional.cat([h] + h_done[::-1], 0) if h_done else h
            c_final = (functional.cat([c] + c_done[::-1], 0) if c_done else c) if lstm else None
        else:
            # the running batch grows: a sequence joins, from its initial state, at its own last step
            h = c = None
            for k in range(len(segments) - 1, -1, -1):
                start, steps, batch = segments[k]
                if h is None:
                    h = h0[:batch]
                    c = c0[:batch] if lstm else None
                elif h.shape[0] < batch:
                    h = functional.cat([h, h0[h.shape[0]:batch]], 0)
                    if lstm:
                        c = functional.cat([c, c0[c.shape[0]:batch]], 0)
                x = data[start:start + steps * batch].reshape(steps, batch, data.shape[-1])
                output, h, c = self._layer(x, h, c, weights, True)
                outputs[k] = output.reshape(steps * batch, output.shape[-1])
            h_final, c_final = h, c
        output = outputs[0] if len(outputs) == 1 else functional.cat(outputs, 0)
        return output, h_final, c_final

    def _forward_packed(self, packed, states):
        """Run a ``PackedSequence``: returns the output ``PackedSequence``, h_n and c_n (or None), the states in
        the caller's batch order."""
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        if data.dim() != 2:
            raise RuntimeError(f"input must have 2 dimensions, got {data.dim()}")
        self._check_input(data)
        states = self._initial_states(states, int(batch_sizes[0]), data)
        if sorted_indices is not None:
            states = tuple(state.index_select(1, sorted_indices) for state in states)
        output, h_n, c_n = self._run(data, states[0], states[1] if self.mode == "LSTM" else None, batch_sizes)
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
            c_n = None if c_n is None else c_n.index_select(1, unsorted_indices)
        return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), h_n, c_n

    def _finish(self, output, batched):
        if not batched:
            return output.squeeze(1)
        if self.batch_first:
            return output.transpose(0, 1)
        return output

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            output, h_n, _ = self._forward_packed(input, None if hx is None else (hx,))
            return output, h_n
        input, (h0,), batched = self._prepare(input, None if hx is None else (hx,))
        output, h_n, _ = self._run(input, h0, None)
        return self._finish(output, batched), (h_n if batched else h_n.squeeze(1))


class RNN(RNNBase):
    r"""Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu), over a sequence.

    Args:
        input_size, hidden_size: feature sizes of ``x`` and ``h``.
        num_layers: stacked layers (default 1). nonlinearity: ``'tanh'`` (default) or ``'relu'``.
        bias: learn ``b_ih`` and ``b_hh`` (default True). batch_first: input/output as (B, T, F) (default False).
        dropout: dropout on each layer's output except the last (default 0). bidirectional: default False.

    Returns ``(output, h_n)``: output (T, B, D*H) and h_n (num_layers*D, B, H). The input may also be a
    ``PackedSequence`` (``dtorch.nn.utils.rnn``): then ``output`` is one too, and h_n holds each sequence's state
    at its own last step.

    >>> import dtorch
    >>> rnn = RNN(10, 20, 2)
    >>> output, h_n = rnn(dtorch.randn(5, 3, 10), dtorch.randn(2, 3, 20))
    >>> output.shape, h_n.shape
    (dtorch.Size([5, 3, 20]), dtorch.Size([2, 3, 20]))
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self_nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self_nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self_nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self_nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self_nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = self_nonlinearity


class LSTM(RNNBase):
    r"""Long short-term memory over a sequence, PyTorch's ``nn.LSTM``.

    Gates (rows of ``weight_ih``/``weight_hh`` in this order): ``i, f, o = sigmoid(.)``, ``g = tanh(.)``;
    ``c_t = f * c_{t-1} + i * g`` and ``h_t = o * tanh(c_t)``. Arguments as ``RNN`` (no ``nonlinearity``).

    Returns ``(output, (h_n, c_n))``.

    >>> import dtorch
    >>> lstm = LSTM(10, 20, num_layers=2, batch_first=True)
    >>> output, (h_n, c_n) = lstm(dtorch.randn(3, 5, 10))
    >>> output.shape, h_n.shape, c_n.shape
    (dtorch.Size([3, 5, 20]), dtorch.Size([2, 3, 20]), dtorch.Size([2, 3, 20]))
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise RuntimeError("LSTM expects hx to be a tuple (h_0, c_0)")
        if isinstance(input, PackedSequence):
            output, h_n, c_n = self._forward_packed(input, None if hx is None else tuple(hx))
            return output, (h_n, c_n)
        input, (h0, c0), batched = self._prepare(input, None if hx is None else tuple(hx))
        output, h_n, c_n = self._run(input, h0, c0)
        if not batched:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return self._finish(output, batched), (h_n, c_n)


class GRU(RNNBase):
    r"""Gated recurrent unit over a sequence, PyTorch's ``nn.GRU``.

    Gates (rows in this order): ``r, z = sigmoid(.)``, ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``,
    ``h_t = (1 - z) * n + z * h_{t-1}``. Arguments and return value as ``RNN`` (no ``nonlinearity``).

    >>> import dtorch
    >>> gru = GRU(10, 20, bidirectional=True)
    >>> output, h_n = gru(dtorch.randn(5, 3, 10))
    >>> output.shape, h_n.shape
    (dtorch.Size([5, 3, 40]), dtorch.Size([2, 3, 20]))
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


def _segments(batch_sizes):
    """``(first_row, steps, batch)`` of each run of equal batch sizes, in time order: each run's packed rows are
    contiguous and time-major, so they reshape to (steps, batch, features)."""
    segments = []
    row = 0
    for size in batch_sizes.tolist():
        if segments and segments[-1][2] == size:
            segments[-1][1] += 1
        else:
            segments.append([row, 1, size])
        row += size
    return [tuple(segment) for segment in segments]


# ======================================================================================================================
# cells: one time step, the same fused op with a sequence of length 1


class RNNCellBase(Module):
    """Base class of the cells: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` (G*H,)."""

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(factories.empty((num_chunks * hidden_size, input_size), device=device, dtype=dtype))
        self.weight_hh = Parameter(factories.empty((num_chunks * hidden_size, hidden_size), device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(factories.empty((num_chunks * hidden_size,), device=device, dtype=dtype))
            self.bias_hh = Parameter(factories.empty((num_chunks * hidden_size,), device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            _uniform_(weight, bound)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            text += f", nonlinearity={nonlinearity}"
        return text

    def _step(self, mode, input, states):
        """Run one step; returns the packed result (``(1, B, H)``, or ``(2, B, H)`` for the LSTM) and batched."""
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        batched = input.dim() == 2
        if states is not None:
            for state in states:
                if state.dim() != input.dim():
                    raise ValueError(f"{name}: Expected hidden to be {input.dim()}D, got {state.dim()}D instead")
        if not batched:
            input = input.unsqueeze(0)
            if states is not None:
                states = tuple(state.unsqueeze(0) for state in states)
        if input.shape[1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.shape[1]} expected {self.input_size}"
            )
        expected = (input.shape[0], self.hidden_size)
        if states is None:
            zeros = factories.zeros(expected, dtype=input.dtype, device=input.device)
            states = (zeros, zeros) if mode == "LSTM" else (zeros,)
        for state in states:
            if tuple(state.shape) != expected:
                raise RuntimeError(f"hidden has inconsistent size: got {list(state.shape)}, expected "
                                   f"{list(expected)}")
        packed = _rnn_layer(input.unsqueeze(0), states[0], states[1] if mode == "LSTM" else None,
                            self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, mode=mode, reverse=False)
        return packed, batched


class RNNCell(RNNCellBase):
    r"""One Elman RNN step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu).

    >>> import dtorch
    >>> cell = RNNCell(10, 20)
    >>> cell(dtorch.randn(3, 10)).shape
    dtorch.Size([3, 20])
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        packed, batched = self._step(mode, input, None if hx is None else (hx,))
        return packed[0] if batched else packed[0, 0]


class LSTMCell(RNNCellBase):
    r"""One LSTM step; returns ``(h', c')``. Gate order i, f, g, o as in ``LSTM``.

    >>> import dtorch
    >>> cell = LSTMCell(10, 20)
    >>> h, c = cell(dtorch.randn(3, 10))
    >>> h.shape, c.shape
    (dtorch.Size([3, 20]), dtorch.Size([3, 20]))
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise RuntimeError("LSTMCell expects hx to be a tuple (h_0, c_0)")
        packed, batched = self._step("LSTM", input, None if hx is None else tuple(hx))
        if batched:
            return packed[0], packed[1]
        return packed[0, 0], packed[1, 0]


class GRUCell(RNNCellBase):
    r"""One GRU step: gate order r, z, n as in ``GRU``.

    >>> import dtorch
    >>> cell = GRUCell(10, 20)
    >>> cell(dtorch.randn(3, 10), dtorch.zeros(3, 20)).shape
    dtorch.Size([3, 20])
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        packed, batched = self._step("GRU", input, None if hx is None else (hx,))
        return packed[0] if batched else packed[0, 0]
