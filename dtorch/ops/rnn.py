"""Fused recurrent layers: one ``Op`` runs a whole layer (one direction) of an Elman RNN, LSTM or GRU.

Composing a recurrent layer from elementwise ops records ~10 graph nodes per time step; at sequence 35 and two
layers that is hundreds of nodes, and the per-node overhead dominates (bench/bench_nn.py, LSTM workload). Here
the input projection of every time step is one matmul before the loop, the loop does one ``h @ W_hh^T`` per step
plus in-place gate arithmetic on raw arrays, and backward walks the steps in reverse on raw arrays, then forms
the weight and input gradients with three matmuls over all steps at once.

Equations (PyTorch's, gate order as in its weight layout):

- ``RNN_TANH`` / ``RNN_RELU``: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``
- ``LSTM`` (gates i, f, g, o): ``i, f, o = sigmoid(...)``, ``g = tanh(...)``, ``c' = f c + i g``, ``h' = o tanh(c')``
- ``GRU`` (gates r, z, n): ``r, z = sigmoid(x W_i{r,z}^T + b_i{r,z} + h W_h{r,z}^T + b_h{r,z})``,
  ``n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn))``, ``h' = (1 - z) n + z h``

- LSTM with projections (``w_hr`` given, PyTorch's ``proj_size``): ``h' = (o tanh(c')) W_hr^T``.

Output packing. A Op has one differentiable output, so ``RNNLayer`` returns one array ``Y``:
``Y[:T]`` holds the hidden state at every time position (in time order, also for ``reverse=True``) and, for the
LSTM only, ``Y[T]`` holds the final cell state. The module takes ``output``, ``h_n`` and ``c_n`` as views of ``Y``
so their gradients meet again in ``Y``'s gradient. With projections the hidden state (width P) and the cell state
(width H) differ in width, so ``Y`` is flat: the (T, B, P) hidden states, raveled, then the (B, H) cell state.
"""

import numpy as np

from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._recompute import recompute_gradients
from dtorch.ops.shape import Cat

MODES = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _sigmoid_(xp, a):
    """In-place logistic function 1 / (1 + exp(-a)): one exp pass, cheaper than the tanh form 0.5 + 0.5 tanh(a / 2)
    (NumPy's float32 tanh takes ~2.5x its exp). exp(-a) overflows to inf for a below ~-88 (float32), giving the
    limit 0: callers run it under ``np.errstate(over="ignore")``."""
    xp.negative(a, out=a)
    xp.exp(a, out=a)
    a += 1
    xp.divide(1, a, out=a)
    return a


def _matmul(xp, a, b, out=None):
    if out is None:
        return xp.matmul(a, b)
    return xp.matmul(a, b, out=out)


def _bias_sum(b_ih, b_hh):
    """``b_ih + b_hh`` (both add to the same pre-activation), or the one given, or None."""
    if b_ih is None or b_hh is None:
        return b_hh if b_ih is None else b_ih
    return b_ih + b_hh


class RNNLayer(Op):
    """One direction of one recurrent layer over a whole sequence.

    Inputs: ``x`` (T, B, I), ``h0`` (B, H), ``c0`` (B, H) for the LSTM else None, ``w_ih`` (G*H, I),
    ``w_hh`` (G*H, H), ``b_ih`` and ``b_hh`` (G*H,) or None, and for an LSTM with projections ``w_hr`` (P, H)
    (then ``h0`` is (B, P) and ``w_hh`` is (4*H, P)). Attrs: ``mode`` (one of ``MODES``) and ``reverse`` (walk
    the sequence from the last position to the first). Returns ``Y`` as described in the module docstring.

    >>> import numpy as np
    >>> x, h0 = np.ones((3, 2, 4), np.float32), np.zeros((2, 5), np.float32)
    >>> w_ih, w_hh = np.full((5, 4), 0.1, np.float32), np.zeros((5, 5), np.float32)
    >>> layer = RNNLayer(mode="RNN_TANH", reverse=False); layer.xp = np
    >>> layer.forward(x, h0, None, w_ih, w_hh, None, None).shape
    (3, 2, 5)
    """

    attr_names = ("mode", "reverse")

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=None):
        xp = self.xp
        mode = self.mode
        steps, batch, _ = x.shape
        hidden = w_hh.shape[1]  # the width of h: P with projections
        dtype = x.dtype
        self.save_for_backward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
        # h_pad holds h0 and every step's hidden state; the state before position t is h_pad[t] going forward
        # and h_pad[t + 1] going backward, so the hidden-state inputs of all steps form one contiguous slice
        h_pad = xp.empty((steps + 1, batch, hidden), dtype=dtype)
        offset = 1 if not self.reverse else 0
        h_pad[steps if self.reverse else 0] = h0
        order = range(steps - 1, -1, -1) if self.reverse else range(steps)
        if mode == "LSTM":  # it projects the input itself, with its own weight layout
            out = self._lstm_forward(xp, x, w_ih, w_hh, b_ih, b_hh, w_hr, h_pad, c0, order, offset)
            self.h_pad = h_pad
            return out
        # every step's input projection in one matmul
        gx = _matmul(xp, x.reshape(steps * batch, x.shape[2]), w_ih.T).reshape(steps, batch, w_ih.shape[0])
        if b_ih is not None:
            if mode == "GRU":
                gx += b_ih
            else:
                gx += _bias_sum(b_ih, b_hh)  # b_hh only ever adds to the same pre-activation
        w_hh_t = w_hh.T
        if mode == "GRU":
            with np.errstate(over="ignore"):  # _sigmoid_'s exp(-a) = inf is its limit 0
                out = self._gru_forward(xp, gx, w_hh_t, b_hh, h_pad, order, offset)
        else:
            out = self._elman_forward(xp, gx, w_hh_t, h_pad, order, offset)
        self.h_pad = h_pad
        return out

    # ---- forward loops --------------------------------------------------------------------------------------------

    def _elman_forward(self, xp, gx, w_hh_t, h_pad, order, offset):
        relu = self.mode == "RNN_RELU"
        for t in order:
            h_prev = h_pad[t + 1 - offset]
            h = h_pad[t + offset]
            _matmul(xp, h_prev, w_hh_t, out=h)
            h += gx[t]
            if relu:
                xp.maximum(h, 0, out=h)
            else:
                xp.tanh(h, out=h)
        start = 1 if offset else 0
        return h_pad[start:start + len(gx)].copy()

    def _lstm_forward(self, xp, x, w_ih, w_hh, b_ih, b_hh, w_hr, h_pad, c0, order, offset):
        steps, batch, _ = x.shape
        hidden = w_hh.shape[0] // 4
        dtype = x.dtype
        gates = _matmul(xp, x.reshape(steps * batch, x.shape[2]), w_ih.T).reshape(steps, batch, 4 * hidden)
        bias = _bias_sum(b_ih, b_hh)
        if bias is not None:
            # one (B * 4H) block broadcast over the T steps: NumPy's broadcast of the (4H,) vector over all T * B
            # rows at once was measured up to ~8x slower than a same-shape add on these sizes
            bias_block = xp.empty((batch, 4 * hidden), dtype=dtype)
            bias_block[...] = bias
            by_step = gates.reshape(steps, batch * 4 * hidden)
            by_step += bias_block.reshape(-1)
        # with projections o * tanh(c) is kept per step and projected into h_pad
        h_full = None if w_hr is None else xp.empty((steps, batch, hidden), dtype=dtype)
        w_hr_t = None if w_hr is None else w_hr.T
        c_pad = xp.empty((steps + 1, batch, hidden), dtype=dtype)
        c_pad[steps if self.reverse else 0] = c0
        tanh_c = xp.empty((steps, batch, hidden), dtype=dtype)
        with np.errstate(over="ignore"):  # _sigmoid_'s exp(-a) = inf is its limit 0
            self._lstm_steps(xp, gates, w_hh.T, w_hr_t, h_pad, c_pad, tanh_c, h_full, order, offset)
        self.gates = gates
        self.c_pad = c_pad
        self.tanh_c = tanh_c
        self.h_full = h_full
        start = 1 if offset else 0
        c_final = c_pad[0 if self.reverse else steps]
        if h_full is None:
            out = xp.empty((steps + 1, batch, hidden), dtype=dtype)
            out[:steps] = h_pad[start:start + steps]
            out[steps] = c_final
            return out
        return xp.concatenate([h_pad[start:start + steps].ravel(), c_final.ravel()])

    def _lstm_steps(self, xp, gates, w_hh_t, w_hr_t, h_pad, c_pad, tanh_c, h_full, order, offset):
        """The recurrence: activates ``gates[t]`` in place (sigmoid for i, f, o, tanh for g) and writes each step's
        c, tanh(c) and h. (``_sigmoid_`` negates in place: that costs less than keeping copies of the weights with
        the sigmoid gates' rows negated, two fresh 1 MB arrays per call at the benchmark's sizes.)"""
        batch, four_hidden = gates.shape[1:]
        hidden = four_hidden // 4
        recurrent = xp.empty((batch, four_hidden), dtype=gates.dtype)  # h @ W_hh^T of the current step
        input_times_candidate = xp.empty((batch, hidden), dtype=gates.dtype)
        candidate_pre = xp.empty((batch, hidden), dtype=gates.dtype)
        for t in order:
            g = gates[t]
            _matmul(xp, h_pad[t + 1 - offset], w_hh_t, out=recurrent)
            g += recurrent
            i = g[:, :hidden]
            f = g[:, hidden: 2 * hidden]
            cand = g[:, 2 * hidden: 3 * hidden]
            o = g[:, 3 * hidden:]
            # the sigmoid over the whole contiguous row, then tanh over g's kept pre-activation: fewer, longer
            # passes than the sigmoid on the two strided blocks (i, f) and (o)
            candidate_pre[...] = cand
            _sigmoid_(xp, g)
            xp.tanh(candidate_pre, out=cand)
            c = c_pad[t + offset]
            xp.multiply(f, c_pad[t + 1 - offset], out=c)
            xp.multiply(i, cand, out=input_times_candidate)
            c += input_times_candidate
            tc = tanh_c[t]
            xp.tanh(c, out=tc)
            if h_full is None:
                xp.multiply(o, tc, out=h_pad[t + offset])
            else:
                xp.multiply(o, tc, out=h_full[t])
                _matmul(xp, h_full[t], w_hr_t, out=h_pad[t + offset])

    def _gru_forward(self, xp, gx, w_hh_t, b_hh, h_pad, order, offset):
        steps, batch, three_hidden = gx.shape
        hidden = three_hidden // 3
        gh_n = xp.empty((steps, batch, hidden), dtype=gx.dtype)
        gates = gx  # r, z, n activated in place
        for t in order:
            h_prev = h_pad[t + 1 - offset]
            gh = _matmul(xp, h_prev, w_hh_t)
            if b_hh is not None:
                gh += b_hh
            g = gates[t]
            rz = g[:, : 2 * hidden]
            rz += gh[:, : 2 * hidden]
            _sigmoid_(xp, rz)
            r = g[:, :hidden]
            z = g[:, hidden: 2 * hidden]
            n = g[:, 2 * hidden:]
            gh_n[t] = gh[:, 2 * hidden:]
            n += r * gh_n[t]
            xp.tanh(n, out=n)
            h = h_pad[t + offset]
            xp.subtract(h_prev, n, out=h)
            h *= z
            h += n
        self.gates = gates
        self.gh_n = gh_n
        start = 1 if offset else 0
        return h_pad[start:start + steps].copy()

    # ---- backward -------------------------------------------------------------------------------------------------

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            # the loops below run on raw arrays with in-place updates: a create_graph backward differentiates a
            # composition of the same recurrence instead (recompute_gradients keeps that inner backward local)
            return recompute_gradients(self.saved_tensors, self.edges, self.composite, grad)
        x, _, _, w_ih, w_hh, _, _, w_hr = self.saved_tensors
        steps, batch, _ = x.shape
        hidden = w_hh.shape[1]
        offset = 1 if not self.reverse else 0
        order = range(steps) if self.reverse else range(steps - 1, -1, -1)
        grad_w_hr = None
        if self.mode == "LSTM":
            d_gx, d_gh, dh0, dc0, grad_w_hr = self._lstm_backward(xp, grad, w_hh, w_hr, order, offset, hidden)
        elif self.mode == "GRU":
            d_gx, d_gh, dh0 = self._gru_backward(xp, grad, w_hh, order, offset, hidden)
            dc0 = None
        else:
            d_gx, d_gh, dh0 = self._elman_backward(xp, grad, w_hh, order, offset)
            dc0 = None
        x_edge, h0_edge, c0_edge, w_ih_edge, w_hh_edge, b_ih_edge, b_hh_edge = self.edges[:7]
        rows = steps * batch
        d_gx_2d = d_gx.reshape(rows, d_gx.shape[2])
        d_gh_2d = d_gh.reshape(rows, d_gh.shape[2])
        grad_x = grad_w_ih = grad_w_hh = grad_b_ih = grad_b_hh = None
        if x_edge is not None:
            grad_x = _matmul(xp, d_gx_2d, w_ih).reshape(x.shape)
        if w_ih_edge is not None:
            grad_w_ih = _matmul(xp, d_gx_2d.T, x.reshape(rows, x.shape[2]))
        if w_hh_edge is not None:
            h_prev = self.h_pad[1:] if self.reverse else self.h_pad[:steps]
            grad_w_hh = _matmul(xp, d_gh_2d.T, h_prev.reshape(rows, hidden))
        if b_ih_edge is not None:
            grad_b_ih = d_gx_2d.sum(axis=0)
        if b_hh_edge is not None:
            if d_gh is d_gx and grad_b_ih is not None:  # both biases add to one pre-activation: one sum
                grad_b_hh = grad_b_ih.copy()
            else:
                grad_b_hh = d_gh_2d.sum(axis=0)
        return (
            grad_x,
            dh0 if h0_edge is not None else None,
            dc0 if c0_edge is not None else None,
            grad_w_ih,
            grad_w_hh,
            grad_b_ih,
            grad_b_hh,
        ) + ((grad_w_hr,) if len(self.edges) == 8 else ())

    def _elman_backward(self, xp, grad, w_hh, order, offset):
        h_pad = self.h_pad
        d_pre = xp.empty(grad.shape, dtype=grad.dtype)
        dh_next = None
        for t in order:
            dh = grad[t] if dh_next is None else grad[t] + dh_next
            h = h_pad[t + offset]
            d = d_pre[t]
            if self.mode == "RNN_RELU":
                xp.multiply(dh, h > 0, out=d)
            else:
                xp.multiply(dh, 1.0 - h * h, out=d)
            dh_next = _matmul(xp, d, w_hh)
        return d_pre, d_pre, dh_next

    def _lstm_backward(self, xp, grad, w_hh, w_hr, order, offset, width):
        gates, c_pad, tanh_c, h_full = self.gates, self.c_pad, self.tanh_c, self.h_full
        steps, batch, four_hidden = gates.shape
        hidden = four_hidden // 4
        dtype = grad.dtype
        if w_hr is None:
            grad_h = grad[:steps]
            grad_c_final = grad[steps]
        else:
            grad_h = grad[: steps * batch * width].reshape(steps, batch, width)
            grad_c_final = grad[steps * batch * width:].reshape(batch, hidden)
            d_proj = xp.empty((steps, batch, width), dtype=dtype)  # gradient of each step's projected h
        # the state gradients flowing back into the first step are work only when h0 or c0 wants a gradient
        wants_dh0 = self.edges[1] is not None
        wants_dc0 = self.edges[2] is not None
        d_gates = xp.empty(gates.shape, dtype=dtype)
        dc_next = grad_c_final.copy()
        dh_next = None
        last = order[-1] if steps else None
        for t in order:
            dh = grad_h[t] if dh_next is None else grad_h[t] + dh_next
            if w_hr is not None:
                d_proj[t] = dh
                dh = _matmul(xp, dh, w_hr)
            g = gates[t]
            i = g[:, :hidden]
            f = g[:, hidden: 2 * hidden]
            cand = g[:, 2 * hidden: 3 * hidden]
            o = g[:, 3 * hidden:]
            tc = tanh_c[t]
            d = d_gates[t]
            # dc = dc_next + dh * o * (1 - tanh(c)^2)
            dc = dh * o
            dc *= 1.0 - tc * tc
            dc += dc_next
            # the gates' gradients before their activations' derivatives: dc * (g, c_prev, i) and dh * tanh(c) ...
            xp.multiply(dc, cand, out=d[:, :hidden])
            xp.multiply(dc, c_pad[t + 1 - offset], out=d[:, hidden: 2 * hidden])
            xp.multiply(dc, i, out=d[:, 2 * hidden: 3 * hidden])
            xp.multiply(dh, tc, out=d[:, 3 * hidden:])
            # ... times s (1 - s) for the sigmoid gates and 1 - g^2 for g, in one pass over the 4H row
            # (NumPy's temporaries here are cheaper than broadcasting per-gate coefficient vectors over the row)
            slope = 1.0 - g
            slope *= g
            xp.multiply(cand, cand, out=slope[:, 2 * hidden: 3 * hidden])
            xp.subtract(1.0, slope[:, 2 * hidden: 3 * hidden], out=slope[:, 2 * hidden: 3 * hidden])
            d *= slope
            if t == last:  # the state gradients into the first step: work only where h0 or c0 wants one
                if wants_dc0:
                    dc *= f
                    dc_next = dc
                if wants_dh0:
                    dh_next = _matmul(xp, d, w_hh)
                break
            dc *= f
            dc_next = dc
            dh_next = _matmul(xp, d, w_hh)
        dh0 = dh_next if wants_dh0 else None
        dc0 = dc_next if wants_dc0 else None
        grad_w_hr = None
        if w_hr is not None and self.edges[7] is not None:
            rows = steps * batch
            grad_w_hr = _matmul(xp, d_proj.reshape(rows, width).T, h_full.reshape(rows, hidden))
        return d_gates, d_gates, dh0, dc0, grad_w_hr

    def _gru_backward(self, xp, grad, w_hh, order, offset, hidden):
        gates, gh_n, h_pad = self.gates, self.gh_n, self.h_pad
        d_gx = xp.empty(gates.shape, dtype=grad.dtype)
        d_gh = xp.empty(gates.shape, dtype=grad.dtype)
        dh_next = None
        for t in order:
            dh = grad[t] if dh_next is None else grad[t] + dh_next
            g = gates[t]
            r = g[:, :hidden]
            z = g[:, hidden: 2 * hidden]
            n = g[:, 2 * hidden:]
            h_prev = h_pad[t + 1 - offset]
            dx = d_gx[t]
            dhh = d_gh[t]
            d_r = dx[:, :hidden]
            d_z = dx[:, hidden: 2 * hidden]
            d_n = dx[:, 2 * hidden:]
            # n' pre-activation gradient: dh * (1 - z) * (1 - n^2)
            xp.multiply(dh, 1.0 - z, out=d_n)
            d_n *= 1.0 - n * n
            # z pre-activation: dh * (h_prev - n) * z * (1 - z)
            xp.subtract(h_prev, n, out=d_z)
            d_z *= dh
            d_z *= z * (1.0 - z)
            # r pre-activation: d_n * (h W_hn^T + b_hn) * r * (1 - r)
            xp.multiply(d_n, gh_n[t], out=d_r)
            d_r *= r * (1.0 - r)
            dhh[:, : 2 * hidden] = dx[:, : 2 * hidden]
            xp.multiply(d_n, r, out=dhh[:, 2 * hidden:])
            dh_next = _matmul(xp, dhh, w_hh)
            dh_next += dh * z
        return d_gx, d_gh, dh_next

    # ---- the same layer composed of differentiable ops (for create_graph) ---------------------------------------------

    def composite(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=None):
        """``Y`` from Tensors with differentiable ops: the reference the fused loops implement."""
        steps = x.shape[0]
        mode = self.mode
        gx = x @ w_ih.t()
        if b_ih is not None:
            gx = gx + b_ih
        if b_hh is not None and mode != "GRU":
            gx = gx + b_hh
        h, c = h0, c0
        outputs = [None] * steps
        for t in (range(steps - 1, -1, -1) if self.reverse else range(steps)):
            if mode == "GRU":
                gh = h @ w_hh.t()
                if b_hh is not None:
                    gh = gh + b_hh
                gx_r, gx_z, gx_n = gx[t].chunk(3, -1)
                gh_r, gh_z, gh_n = gh.chunk(3, -1)
                r, z = (gx_r + gh_r).sigmoid(), (gx_z + gh_z).sigmoid()
                n = (gx_n + r * gh_n).tanh()
                h = (1 - z) * n + z * h
            else:
                pre = gx[t] + h @ w_hh.t()
                if mode == "LSTM":
                    i, f, g, o = pre.chunk(4, -1)
                    c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                    h = o.sigmoid() * c.tanh()
                    if w_hr is not None:
                        h = h @ w_hr.t()
                else:
                    h = pre.tanh() if mode == "RNN_TANH" else pre.relu()
            outputs[t] = h
        hidden = _stack(outputs)
        if mode != "LSTM":
            return hidden
        if w_hr is None:
            return _cat([hidden, c.unsqueeze(0)])
        return _cat([hidden.reshape(-1), c.reshape(-1)])


def _stack(tensors):
    return _cat([t.unsqueeze(0) for t in tensors])


def _cat(tensors):
    return Cat.apply(*tensors, axis=0)
