"""One converter per recorded op kind: dtorch graph nodes to ONNX nodes.

A converter is ``convert(b, node, inputs, attrs)``: ``b`` is the ``Builder`` (value names, initializers, helper
constructors), ``inputs`` the node's inputs (dtorch value names or Python constants), ``attrs`` its decoded attrs.
It returns one ONNX name per node output (None for outputs that nothing may use). Parameters, buffers and
constants become initializers when a converter first reads them.
"""

import math

import numpy as np

from dtorch.jit import _graph

INT64_MAX = 2 ** 63 - 1


class Builder:
    def __init__(self, onnx, capture, module, opset):
        self.onnx = onnx
        self.helper = onnx.helper
        self.graph = capture.graph
        self.opset = opset
        self.nodes = []
        self.initializers = {}
        self.bound = {}  # dtorch value -> ONNX name
        self.static = {}  # dtorch value -> (name, array) for parameters, buffers and constants
        self.counter = 0
        self.shapes = {}
        graph = capture.graph
        if module is not None:
            params = dict(module.named_parameters(remove_duplicate=False))
            buffers = dict(module.named_buffers(remove_duplicate=False))
            # a tied weight has several names and one value: its initializer takes the first name
            for name, value in graph.parameters.items():
                self.static.setdefault(value, (name, _numpy(params[name])))
            for name, value in graph.buffers.items():
                self.static.setdefault(value, (name, _numpy(buffers[name])))
        for name, value in graph.constants.items():
            self.static[value] = (f"constant_{name}", capture.constant_arrays[name])

    # ---- names and values ----------------------------------------------------------------------------------------

    def fresh(self, hint):
        self.counter += 1
        return f"{hint}_{self.counter}"

    def value(self, ref):
        """The ONNX name of a dtorch value (an input, a converted output, or a static tensor made an initializer)."""
        if ref in self.bound:
            return self.bound[ref]
        if ref in self.static:
            name, array = self.static[ref]
            self.initializers[name] = self.onnx.numpy_helper.from_array(np.array(array, order="C", copy=True), name)
            self.bound[ref] = name
            return name
        raise RuntimeError(f"internal error: value {ref} used before it was produced")

    def array(self, ref):
        """The array of a static value (parameter, buffer, constant), or None."""
        entry = self.static.get(ref)
        return None if entry is None else entry[1]

    def const(self, array, hint="const"):
        name = self.fresh(hint)
        self.initializers[name] = self.onnx.numpy_helper.from_array(np.array(array, order="C", copy=True), name)
        return name

    def ints(self, values, hint="ints"):
        return self.const(np.asarray(values, dtype=np.int64), hint)

    def info(self, ref):
        entry = self.graph.values[ref]
        return tuple(entry["shape"]), np.dtype(entry["dtype"])

    def rank(self, ref):
        return len(self.graph.values[ref]["shape"])

    def op(self, op_type, inputs, outputs=1, **attrs):
        names = [self.fresh(op_type) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, [("" if i is None else i) for i in inputs], names,
                                                **attrs))
        return names[0] if outputs == 1 else names

    def shape_of(self, name):
        if name not in self.shapes:
            self.shapes[name] = self.op("Shape", [name])
        return self.shapes[name]

    def operand(self, item, dtype):
        """A node input: a dtorch value (cast to ``dtype`` when it differs) or a Python number as a constant."""
        if isinstance(item, str):
            name = self.value(item)
            if self.info(item)[1] != dtype:
                name = self.op("Cast", [name], to=_onnx_type(self.onnx, dtype))
            return name
        return self.const(np.asarray(item, dtype=dtype), "scalar")

    def size_vector(self, entries):
        """A 1-D int64 tensor of sizes: ints, -1, or symbolic expressions (``["dim", value, axis]``, ...)."""
        if all(isinstance(e, int) for e in entries):
            return self.ints(list(entries), "shape")
        parts = [self.dim_expression(e) for e in entries]
        return self.op("Concat", parts, axis=0)

    def dim_expression(self, expr):
        if isinstance(expr, _graph.Sym):
            expr = expr.expr
        if isinstance(expr, int):
            return self.ints([expr])
        head = expr[0]
        if head == "dim":
            return self.op("Gather", [self.shape_of(self.value(expr[1])), self.ints([expr[2]])], axis=0)
        if head == "infer":
            return self.ints([-1])
        if head == "neg":
            return self.op("Neg", [self.dim_expression(expr[1])])
        op_type = {"add": "Add", "sub": "Sub", "mul": "Mul", "floordiv": "Div", "mod": "Mod"}[head]
        return self.op(op_type, [self.dim_expression(expr[1]), self.dim_expression(expr[2])])


def _numpy(tensor):
    array = tensor._array
    return array.get() if hasattr(array, "get") else np.asarray(array)


def _onnx_type(onnx, dtype):
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _out_dtype(b, node, index=0):
    return b.info(node["outputs"][index])[1]


def _unsupported(node, why):
    from dtorch.onnx import UnsupportedOperatorError

    return UnsupportedOperatorError(f"Exporting the operator {node['op']!r} to ONNX is not supported: {why}")


# ---- elementwise ------------------------------------------------------------------------------------------------

_BINARY = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "Maximum": "Max", "Minimum": "Min"}
_UNARY = {"Neg": "Neg", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Abs": "Abs", "Sin": "Sin", "Cos": "Cos",
          "Tanh": "Tanh", "Sigmoid": "Sigmoid", "Relu": "Relu", "Erf": "Erf", "Clone": "Identity",
          "Contiguous": "Identity", "Sinh": "Sinh", "Cosh": "Cosh", "Asin": "Asin", "Acos": "Acos", "Atan": "Atan"}


def _binary(op_type):
    def convert(b, node, inputs, attrs):
        dtype = _out_dtype(b, node)
        return [b.op(op_type, [b.operand(inputs[0], dtype), b.operand(inputs[1], dtype)])]

    return convert


def _unary(op_type):
    def convert(b, node, inputs, attrs):
        return [b.op(op_type, [b.value(inputs[0])])]

    return convert


def _pow(b, node, inputs, attrs):
    dtype = _out_dtype(b, node)
    return [b.op("Pow", [b.operand(inputs[0], dtype), b.operand(inputs[1], dtype)])]


def _rsqrt(b, node, inputs, attrs):
    return [b.op("Reciprocal", [b.op("Sqrt", [b.value(inputs[0])])])]


def _log1p(b, node, inputs, attrs):
    x = b.value(inputs[0])
    return [b.op("Log", [b.op("Add", [x, b.operand(1.0, _out_dtype(b, node))])])]


def _silu(b, node, inputs, attrs):
    x = b.value(inputs[0])
    return [b.op("Mul", [x, b.op("Sigmoid", [x])])]


def _gelu(b, node, inputs, attrs):
    x = b.value(inputs[0])
    approximate = attrs.get("approximate", "none")
    if b.opset >= 20:
        return [b.op("Gelu", [x], approximate=approximate)]
    dtype = _out_dtype(b, node)
    if approximate == "tanh":
        cube = b.op("Mul", [x, b.op("Mul", [x, x])])
        inner = b.op("Mul", [b.op("Add", [x, b.op("Mul", [cube, b.operand(0.044715, dtype)])]),
                             b.operand(math.sqrt(2 / math.pi), dtype)])
        half = b.op("Add", [b.op("Tanh", [inner]), b.operand(1.0, dtype)])
    else:
        half = b.op("Add", [b.op("Erf", [b.op("Mul", [x, b.operand(1 / math.sqrt(2), dtype)])]),
                            b.operand(1.0, dtype)])
    return [b.op("Mul", [b.op("Mul", [x, half]), b.operand(0.5, dtype)])]


def _softplus(b, node, inputs, attrs):
    x = b.value(inputs[0])
    beta = attrs.get("beta", 1.0)
    if beta == 1:
        return [b.op("Softplus", [x])]
    dtype = _out_dtype(b, node)
    scaled = b.op("Softplus", [b.op("Mul", [x, b.operand(beta, dtype)])])
    return [b.op("Div", [scaled, b.operand(beta, dtype)])]


def _leaky_relu(b, node, inputs, attrs):
    return [b.op("LeakyRelu", [b.value(inputs[0])], alpha=float(attrs["negative_slope"]))]


def _elu(b, node, inputs, attrs):
    x = b.value(inputs[0])
    alpha, scale, input_scale = attrs["alpha"], attrs["scale"], attrs["input_scale"]
    if input_scale != 1:
        raise _unsupported(node, f"input_scale={input_scale}")
    if scale == 1:
        return [b.op("Elu", [x], alpha=float(alpha))]
    return [b.op("Selu", [x], alpha=float(alpha), gamma=float(scale))]


def _clip(low, high):
    def convert(b, node, inputs, attrs):
        dtype = _out_dtype(b, node)
        lo, hi = attrs.get(low), attrs.get(high)
        return [b.op("Clip", [b.value(inputs[0]), None if lo is None else b.operand(lo, dtype),
                              None if hi is None else b.operand(hi, dtype)])]

    return convert


def _softmax(op_type):
    def convert(b, node, inputs, attrs):
        return [b.op(op_type, [b.value(inputs[0])], axis=int(attrs["axis"]))]

    return convert


def _cast(b, node, inputs, attrs):
    return [b.op("Cast", [b.value(inputs[0])], to=_onnx_type(b.onnx, attrs["dtype"]))]


def _where(b, node, inputs, attrs):
    dtype = _out_dtype(b, node)
    condition = b.value(inputs[0])
    if b.info(inputs[0])[1] != np.bool_:
        condition = b.op("Cast", [condition], to=_onnx_type(b.onnx, np.bool_))
    return [b.op("Where", [condition, b.operand(inputs[1], dtype), b.operand(inputs[2], dtype)])]


# ---- linear algebra and layers --------------------------------------------------------------------------------


def _linear(b, node, inputs, attrs):
    x, weight, bias = inputs
    if b.rank(x) == 2:
        return [b.op("Gemm", [b.value(x), b.value(weight), None if bias is None else b.value(bias)], transB=1)]
    out = b.op("MatMul", [b.value(x), b.op("Transpose", [b.value(weight)], perm=[1, 0])])
    if bias is not None:
        out = b.op("Add", [out, b.value(bias)])
    return [out]


def _matmul(b, node, inputs, attrs):
    return [b.op("MatMul", [b.value(inputs[0]), b.value(inputs[1])])]


def _conv2d(b, node, inputs, attrs):
    x, weight, bias = inputs
    top, bottom, left, right = attrs["padding"]
    kernel = list(b.info(weight)[0][2:])
    return [b.op("Conv", [b.value(x), b.value(weight), None if bias is None else b.value(bias)],
                 kernel_shape=kernel, strides=list(attrs["stride"]), pads=[top, left, bottom, right],
                 dilations=list(attrs["dilation"]), group=int(attrs["groups"]))]


def _max_pool(b, node, inputs, attrs):
    ph, pw = attrs["padding"]
    outputs = 2 if node["op"] == "MaxPool2dWithIndices" else 1
    result = b.op("MaxPool", [b.value(inputs[0])], outputs=1, kernel_shape=list(attrs["kernel_size"]),
                  strides=list(attrs["stride"]), pads=[ph, pw, ph, pw], dilations=list(attrs["dilation"]),
                  ceil_mode=int(bool(attrs["ceil_mode"])))
    if outputs == 2:
        return [result, None]
    return [result]


def _avg_pool(b, node, inputs, attrs):
    if attrs.get("divisor_override") is not None:
        raise _unsupported(node, "divisor_override")
    ph, pw = attrs["padding"]
    return [b.op("AveragePool", [b.value(inputs[0])], kernel_shape=list(attrs["kernel_size"]),
                 strides=list(attrs["stride"]), pads=[ph, pw, ph, pw], ceil_mode=int(bool(attrs["ceil_mode"])),
                 count_include_pad=int(bool(attrs["count_include_pad"])))]


def _adaptive_avg_pool(b, node, inputs, attrs):
    x = inputs[0]
    oh, ow = attrs["output_size"]
    if (oh, ow) == (1, 1):
        return [b.op("GlobalAveragePool", [b.value(x)])]
    h, w = b.info(x)[0][-2:]
    if h % oh or w % ow:
        raise _unsupported(node, f"output size {(oh, ow)} does not divide the input's {(h, w)}")
    kernel = [h // oh, w // ow]
    return [b.op("AveragePool", [b.value(x)], kernel_shape=kernel, strides=kernel)]


def _batch_norm(b, node, inputs, attrs):
    x, weight, bias, mean, var = inputs
    if attrs["training"] or mean is None:
        raise _unsupported(node, "batch statistics (training mode or track_running_stats=False); export in eval "
                                 "mode with running statistics")
    channels = b.info(mean)[0][0]
    dtype = b.info(x)[1]
    scale = b.value(weight) if weight is not None else b.const(np.ones(channels, dtype), "bn_scale")
    shift = b.value(bias) if bias is not None else b.const(np.zeros(channels, dtype), "bn_bias")
    out = b.op("BatchNormalization", [b.value(x), scale, shift, b.value(mean), b.value(var)],
               epsilon=float(attrs["eps"]))
    return [out, None, None]


def _layer_norm(b, node, inputs, attrs):
    x, weight, bias = inputs
    k = int(attrs["normalized_ndim"])
    shape, dtype = b.info(x)
    scale = b.value(weight) if weight is not None else b.const(np.ones(shape[-k:], dtype), "ln_scale")
    # always a bias: onnxruntime 1.32's graph optimizer crashes on a LayerNormalization without one
    shift = b.value(bias) if bias is not None else b.const(np.zeros(shape[-k:], dtype), "ln_bias")
    return [b.op("LayerNormalization", [b.value(x), scale, shift], axis=-k, epsilon=float(attrs["eps"]))]


def _embedding(b, node, inputs, attrs):
    indices, weight = inputs
    return [b.op("Gather", [b.value(weight), b.value(indices)], axis=0)]


# ---- shapes ---------------------------------------------------------------------------------------------------------


def _reshape(b, node, inputs, attrs):
    x = b.value(inputs[0])
    rule = node.get("shape_rule")
    rank = b.rank(inputs[0])
    if rule is not None:
        (kind, arg), = rule.items()
        if kind == "unsqueeze":
            return [b.op("Unsqueeze", [x, b.ints([arg])])]
        if kind == "squeeze":
            if arg is None:
                axes = [i for i, s in enumerate(b.info(inputs[0])[0]) if s == 1]
            else:
                axes = [a for a in arg if b.info(inputs[0])[0][a] == 1]
            return [b.op("Squeeze", [x, b.ints(axes)]) if axes else b.op("Identity", [x])]
        if kind == "flatten":
            start, end = arg
            if start == end:
                return [b.op("Identity", [x])]
            shape = b.shape_of(x)
            parts = []
            if start > 0:
                parts.append(b.op("Slice", [shape, b.ints([0]), b.ints([start])]))
            parts.append(b.ints([-1]))
            if end + 1 < rank:
                parts.append(b.op("Slice", [shape, b.ints([end + 1]), b.ints([rank])]))
            target = parts[0] if len(parts) == 1 else b.op("Concat", parts, axis=0)
            return [b.op("Reshape", [x, target])]
        entries = [e for e in arg]
        return [b.op("Reshape", [x, b.size_vector(entries)])]
    entries = [e.expr if isinstance(e, _graph.Sym) else e for e in attrs["shape"]]
    return [b.op("Reshape", [x, b.size_vector(entries)])]


def _expand(b, node, inputs, attrs):
    x = b.value(inputs[0])
    rule = node.get("shape_rule")
    if rule is not None:
        entries = [1 if e == -1 else e for e in rule["expand"]]
    else:
        entries = [e.expr if isinstance(e, _graph.Sym) else e for e in attrs["shape"]]
    return [b.op("Expand", [x, b.size_vector(entries)])]


def _permute(b, node, inputs, attrs):
    return [b.op("Transpose", [b.value(inputs[0])], perm=list(attrs["dims"]))]


def _cat(b, node, inputs, attrs):
    dtype = _out_dtype(b, node)
    return [b.op("Concat", [b.operand(i, dtype) for i in inputs], axis=int(attrs["axis"]))]


def _stack(b, node, inputs, attrs):
    axis = int(attrs["axis"])
    dtype = _out_dtype(b, node)
    parts = [b.op("Unsqueeze", [b.operand(i, dtype), b.ints([axis])]) for i in inputs]
    return [b.op("Concat", parts, axis=axis)]


def _reduce(op_type):
    def convert(b, node, inputs, attrs):
        x = b.value(inputs[0])
        axes = attrs["axes"]
        dtype = attrs.get("dtype")
        if dtype is not None:
            x = b.op("Cast", [x], to=_onnx_type(b.onnx, dtype))
        if axes is None or len(axes) == 0 and b.rank(inputs[0]) > 0:
            axes = list(range(b.rank(inputs[0])))
        return [b.op(op_type, [x, b.ints(list(axes))], keepdims=int(bool(attrs["keepdim"])))]

    return convert


def _bound(b, value, default):
    """A slice bound as a 1-element int64 tensor: a number, or a size the trace recorded symbolically."""
    if value is None:
        return b.ints([default])
    if isinstance(value, _graph.Sym):
        return b.dim_expression(value)
    return b.ints([value])


def _index(b, node, inputs, attrs):
    """``x[key]``: slices and ints one axis at a time (Slice, Gather), None as Unsqueeze, one index tensor."""
    x = b.value(inputs[0])
    rank = b.rank(inputs[0])
    spec = attrs["spec"]
    consuming = sum(1 for entry in spec if entry[0] in ("int", "slice", "tensor"))
    tensors = [entry for entry in spec if entry[0] == "tensor"]
    if len(tensors) > 1:
        raise _unsupported(node, "more than one index tensor in a key")
    axis = 0
    for entry in spec:
        kind = entry[0]
        if kind == "slice":
            start, stop, step = entry[1:]
            step = 1 if step is None else step
            if (start, stop, step) != (None, None, 1):
                x = b.op("Slice", [x, _bound(b, start, 0), _bound(b, stop, INT64_MAX), b.ints([axis]),
                                   b.ints([step])])
            axis += 1
        elif kind == "int":
            x = b.op("Gather", [x, b.const(np.asarray(entry[1], dtype=np.int64))], axis=axis)
        elif kind == "none":
            x = b.op("Unsqueeze", [x, b.ints([axis])])
            axis += 1
        elif kind == "ellipsis":
            axis += rank - consuming
        else:
            index = inputs[1 + entry[1]]
            if b.info(index)[1] == np.bool_:
                raise _unsupported(node, "boolean mask indexing")
            name = b.operand(index, np.dtype(np.int64))
            x = b.op("Gather", [x, name], axis=axis)
            axis += b.rank(index)
    return [x]


# ---- whole layers ------------------------------------------------------------------------------------------------


def _argument(tree, inputs):
    (kind, item), = tree.items()
    if kind == "input":
        return inputs[item]
    if kind == "tuple":
        return tuple(_argument(t, inputs) for t in item)
    return item


_GATE_ORDER = {"nn.LSTM": [0, 3, 1, 2], "nn.GRU": [1, 0, 2], "nn.RNN": [0]}  # PyTorch's gates in ONNX's order


def _reorder(array, op):
    order = _GATE_ORDER[op]
    blocks = np.split(array, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


def _rnn(b, node, inputs, attrs):
    op = node["op"]
    config = attrs["config"]
    if config.get("proj_size", 0):
        raise _unsupported(node, "LSTM with proj_size")
    params = dict(zip(attrs["parameters"], inputs[len(inputs) - len(attrs["parameters"]):]))
    arrays = {}
    for name, ref in params.items():
        array = b.array(ref) if isinstance(ref, str) else None
        if array is None:
            raise _unsupported(node, f"its parameter {name} is computed in the forward, not a model parameter")
        arrays[name] = array
    args = attrs["args"]
    x_ref = _argument(args["input"], inputs)
    hx = _argument(args["hx"], inputs)
    lstm = op == "nn.LSTM"
    h0, c0 = (hx if lstm else (hx, None)) if hx is not None else (None, None)
    hidden, layers = config["hidden_size"], config["num_layers"]
    directions = 2 if config["bidirectional"] else 1
    batched = b.rank(x_ref) == 3
    x = b.value(x_ref)
    if not batched:
        x = b.op("Unsqueeze", [x, b.ints([1])])
    elif config["batch_first"]:
        x = b.op("Transpose", [x], perm=[1, 0, 2])
    states = []
    for state in (h0, c0):
        if state is None:
            states.append(None)
            continue
        name = b.value(state)
        states.append(b.op("Unsqueeze", [name, b.ints([1])]) if not batched else name)
    suffixes = [""] + (["_reverse"] if directions == 2 else [])
    extra = {"hidden_size": hidden, "direction": "bidirectional" if directions == 2 else "forward"}
    onnx_op = {"nn.LSTM": "LSTM", "nn.GRU": "GRU", "nn.RNN": "RNN"}[op]
    if op == "nn.GRU":
        extra["linear_before_reset"] = 1
    if op == "nn.RNN":
        extra["activations"] = [config.get("nonlinearity", "tanh").capitalize()] * directions
    layer_input = x
    finals_h, finals_c = [], []
    for layer in range(layers):
        w = np.stack([_reorder(arrays[f"weight_ih_l{layer}{s}"], op) for s in suffixes])
        r = np.stack([_reorder(arrays[f"weight_hh_l{layer}{s}"], op) for s in suffixes])
        bias = None
        if config["bias"]:
            bias = b.const(np.stack([np.concatenate([_reorder(arrays[f"bias_ih_l{layer}{s}"], op),
                                                     _reorder(arrays[f"bias_hh_l{layer}{s}"], op)])
                                     for s in suffixes]), "rnn_B")
        initial = []
        for state in states[: 2 if lstm else 1]:
            if state is None:
                initial.append(None)
            else:
                initial.append(b.op("Slice", [state, b.ints([layer * directions]),
                                              b.ints([(layer + 1) * directions]), b.ints([0])]))
        node_inputs = [layer_input, b.const(w, "rnn_W"), b.const(r, "rnn_R"), bias, None] + initial
        while node_inputs and node_inputs[-1] is None:
            node_inputs.pop()
        results = b.op(onnx_op, node_inputs, outputs=3 if lstm else 2, **extra)
        y = b.op("Transpose", [results[0]], perm=[0, 2, 1, 3])
        layer_input = b.op("Reshape", [y, b.ints([0, 0, -1])])
        finals_h.append(results[1])
        if lstm:
            finals_c.append(results[2])
    output = layer_input
    h_n = finals_h[0] if layers == 1 else b.op("Concat", finals_h, axis=0)
    c_n = None
    if lstm:
        c_n = finals_c[0] if layers == 1 else b.op("Concat", finals_c, axis=0)
    if not batched:
        output = b.op("Squeeze", [output, b.ints([1])])
        h_n = b.op("Squeeze", [h_n, b.ints([1])])
        if lstm:
            c_n = b.op("Squeeze", [c_n, b.ints([1])])
    elif config["batch_first"]:
        output = b.op("Transpose", [output], perm=[1, 0, 2])
    return [output, h_n, c_n] if lstm else [output, h_n]


def _float_mask(b, ref, dtype):
    """A bool mask (True = masked) as 0/-inf, a float mask as is."""
    name = b.value(ref)
    if b.info(ref)[1] == np.bool_:
        return b.op("Where", [name, b.const(np.asarray(-np.inf, dtype), "neg_inf"),
                              b.const(np.asarray(0, dtype), "zero")])
    if b.info(ref)[1] != dtype:
        return b.op("Cast", [name], to=_onnx_type(b.onnx, dtype))
    return name


def _multihead_attention(b, node, inputs, attrs):
    config = attrs["config"]
    embed, heads = config["embed_dim"], config["num_heads"]
    if config["add_bias_kv"] or config["add_zero_attn"]:
        raise _unsupported(node, "add_bias_kv / add_zero_attn")
    params = dict(zip(attrs["parameters"], inputs[len(inputs) - len(attrs["parameters"]):]))
    arrays = {name: b.array(ref) for name, ref in params.items()}
    if any(a is None for a in arrays.values()):
        raise _unsupported(node, "its parameters are computed in the forward")
    args = {key: _argument(tree, inputs) for key, tree in attrs["args"].items()}
    query, key, value = args["query"], args["key"], args["value"]
    if b.rank(query) != 3:
        raise _unsupported(node, "unbatched (2-D) query")
    dtype = b.info(query)[1]
    head_dim = embed // heads
    if "in_proj_weight" in arrays:
        weight = arrays["in_proj_weight"]
        w_q, w_k, w_v = weight[:embed], weight[embed:2 * embed], weight[2 * embed:]
    else:
        w_q, w_k, w_v = arrays["q_proj_weight"], arrays["k_proj_weight"], arrays["v_proj_weight"]
    biases = (None, None, None)
    if "in_proj_bias" in arrays:
        bias = arrays["in_proj_bias"]
        biases = (bias[:embed], bias[embed:2 * embed], bias[2 * embed:])

    def batch_first(ref):
        name = b.value(ref)
        return name if config["batch_first"] else b.op("Transpose", [name], perm=[1, 0, 2])

    def project(name, w, bias):
        out = b.op("MatMul", [name, b.const(np.ascontiguousarray(w.T), "mha_W")])
        if bias is not None:
            out = b.op("Add", [out, b.const(bias, "mha_b")])
        return b.op("Reshape", [out, b.ints([0, 0, heads, head_dim])])  # (N, L, heads, head_dim)

    q = b.op("Transpose", [project(batch_first(query), w_q, biases[0])], perm=[0, 2, 1, 3])  # (N, h, L, d)
    k = b.op("Transpose", [project(batch_first(key), w_k, biases[1])], perm=[0, 2, 3, 1])  # (N, h, d, S)
    v = b.op("Transpose", [project(batch_first(value), w_v, biases[2])], perm=[0, 2, 1, 3])  # (N, h, S, d)
    scale = b.const(np.asarray(1.0 / math.sqrt(head_dim), dtype), "mha_scale")
    scores = b.op("MatMul", [b.op("Mul", [q, scale]), k])
    mask_ref = args.get("attn_mask")
    if mask_ref is not None:
        mask = _float_mask(b, mask_ref, dtype)
        if b.rank(mask_ref) == 3:
            tail = b.op("Slice", [b.shape_of(mask), b.ints([1]), b.ints([3])])
            mask = b.op("Reshape", [mask, b.op("Concat", [b.ints([-1, heads]), tail], axis=0)])
        scores = b.op("Add", [scores, mask])
    padding_ref = args.get("key_padding_mask")
    if padding_ref is not None:
        padding = b.op("Unsqueeze", [_float_mask(b, padding_ref, dtype), b.ints([1, 2])])
        scores = b.op("Add", [scores, padding])
    weights = b.op("Softmax", [scores], axis=-1)
    context = b.op("Transpose", [b.op("MatMul", [weights, v])], perm=[0, 2, 1, 3])
    context = b.op("Reshape", [context, b.ints([0, 0, embed])])
    out = b.op("MatMul", [context, b.const(np.ascontiguousarray(arrays["out_proj.weight"].T), "mha_out_W")])
    if "out_proj.bias" in arrays:
        out = b.op("Add", [out, b.const(arrays["out_proj.bias"], "mha_out_b")])
    if not config["batch_first"]:
        out = b.op("Transpose", [out], perm=[1, 0, 2])
    if not args.get("need_weights", True):
        return [out, None]
    if args.get("average_attn_weights", True):
        weights = b.op("ReduceMean", [weights, b.ints([1])], keepdims=0)
    return [out, weights]


_COMPARISONS = {"equal": "Equal", "less": "Less", "less_equal": "LessOrEqual", "greater": "Greater",
                "greater_equal": "GreaterOrEqual", "not_equal": "Equal", "logical_and": "And", "logical_or": "Or",
                "logical_xor": "Xor", "logical_not": "Not", "isnan": "IsNaN", "isinf": "IsInf"}


def _compare(b, node, inputs, attrs):
    function = attrs["function"]
    op_type = _COMPARISONS.get(function)
    if op_type is None:
        raise _unsupported(node, f"function {function!r}")
    if function.startswith("logical"):
        dtype = np.dtype(np.bool_)
    else:
        tensors = [i for i in inputs if isinstance(i, str)]
        dtype = np.result_type(*[b.info(i)[1] for i in tensors])
    out = b.op(op_type, [b.operand(i, dtype) for i in inputs])
    return [b.op("Not", [out]) if function == "not_equal" else out]


def _zero_grad_unary(b, node, inputs, attrs):
    function = attrs["function"]
    op_type = {"floor": "Floor", "ceil": "Ceil", "sign": "Sign", "round": "Round"}.get(function)
    if op_type is None or (function == "round" and attrs.get("decimals")):
        raise _unsupported(node, f"function {function!r}")
    return [b.op(op_type, [b.value(inputs[0])])]


def _max_min(b, node, inputs, attrs):
    op_type = "ReduceMax" if attrs["mode"] == "max" else "ReduceMin"
    return [b.op(op_type, [b.value(inputs[0]), b.ints(list(attrs["axes"]))], keepdims=int(bool(attrs["keepdim"])))]


def _arg_extreme(b, node, inputs, attrs):
    op_type = "ArgMax" if attrs["mode"] == "max" else "ArgMin"
    x = b.value(inputs[0])
    axis = attrs["axis"]
    if axis is None:
        flat = b.op(op_type, [b.op("Reshape", [x, b.ints([-1])])], axis=0, keepdims=0)
        if attrs["keepdim"]:
            return [b.op("Reshape", [flat, b.ints([1] * b.rank(inputs[0]))])]
        return [flat]
    return [b.op(op_type, [x], axis=int(axis), keepdims=int(bool(attrs["keepdim"])))]


def _repeat(b, node, inputs, attrs):
    repeats = [int(r) for r in attrs["repeats"]]
    x = b.value(inputs[0])
    extra = len(repeats) - b.rank(inputs[0])
    if extra:
        x = b.op("Unsqueeze", [x, b.ints(list(range(extra)))])
    return [b.op("Tile", [x, b.ints(repeats)])]


def _constant_pad(b, node, inputs, attrs):
    pads = attrs["pads"]
    begins = [int(p[0]) for p in pads]
    ends = [int(p[1]) for p in pads]
    rank = b.rank(inputs[0])
    begins += [0] * (rank - len(begins))
    ends += [0] * (rank - len(ends))
    value = b.operand(attrs["value"], _out_dtype(b, node))
    return [b.op("Pad", [b.value(inputs[0]), b.ints(begins + ends), value], mode="constant")]


def _scaled_dot_product_attention(b, node, inputs, attrs):
    """``softmax(q k^T * scale + mask) v``; a bool mask is True where attention is allowed."""
    q, k, v, mask, dropout_mask = inputs
    if dropout_mask is not None:
        raise _unsupported(node, "dropout (export in eval mode or with dropout_p=0)")
    dtype = b.info(q)[1]
    rank = b.rank(k)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    scores = b.op("MatMul", [b.value(q), b.op("Transpose", [b.value(k)], perm=perm)])
    scores = b.op("Mul", [scores, b.operand(float(attrs["scale"]), dtype)])
    minus_inf = b.const(np.asarray(-np.inf, dtype), "neg_inf")
    if attrs["is_causal"]:
        sizes = b.op("Slice", [b.shape_of(scores), b.ints([-2]), b.ints([INT64_MAX])])
        ones = b.op("ConstantOfShape", [sizes], value=b.onnx.numpy_helper.from_array(np.ones(1, np.bool_)))
        allowed = b.op("Trilu", [ones], upper=0)
        scores = b.op("Where", [allowed, scores, minus_inf])
    if mask is not None:
        if b.info(mask)[1] == np.bool_:
            scores = b.op("Where", [b.value(mask), scores, minus_inf])
        else:
            scores = b.op("Add", [scores, b.operand(mask, dtype)])
    weights = b.op("Softmax", [scores], axis=-1)
    return [b.op("MatMul", [weights, b.value(v)])]


_FILLS = {"zeros": 0, "ones": 1, "empty": 0, "zeros_like": 0, "ones_like": 1, "empty_like": 0}


def _factory(b, node, inputs, attrs):
    """``zeros``/``ones``/``full``/``empty`` (and their ``_like`` forms) as ConstantOfShape, ``arange`` as Range."""
    function = attrs["function"]
    refs = attrs["refs"]
    dtype = b.info(node["outputs"][0])[1]

    def argument(tree):
        (kind, item), = tree.items()
        if kind == "input":
            return ("tensor", refs[item])
        if kind == "sym":
            return ("expr", item)
        if kind == "tuple":
            return ("tuple", [argument(t) for t in item])
        return ("const", item)

    args = [argument(t) for t in attrs["args"]]

    def fill_of(value):
        return np.asarray([value], dtype=dtype)

    def filled(shape_vector, value):
        tensor = b.onnx.numpy_helper.from_array(fill_of(value), b.fresh("fill"))
        return b.op("ConstantOfShape", [shape_vector], value=tensor)

    if function.endswith("_like") and function[:-5] in ("zeros", "ones", "empty", "full"):
        value = _FILLS.get(function, args[1][1] if len(args) > 1 else 0)
        return [filled(b.shape_of(b.value(args[0][1])), value)]
    if function in ("zeros", "ones", "empty", "full"):
        # full(size, value); the others take sizes one by one or as one sequence
        sizes = args[0][1] if function == "full" or (len(args) == 1 and args[0][0] == "tuple") else args
        entries = []
        for kind, item in sizes:
            if kind not in ("expr", "const"):
                raise _unsupported(node, f"{function} with a size given as {kind}")
            entries.append(item)
        value = args[1][1] if function == "full" else _FILLS[function]
        return [filled(b.size_vector(entries), value)]
    if function == "arange":
        bounds = list(args)
        if len(bounds) == 1:
            bounds = [("const", 0)] + bounds
        if len(bounds) == 2:
            bounds = bounds + [("const", 1)]
        scalars = []
        for kind, item in bounds:
            if kind == "expr":
                scalars.append(b.op("Cast", [b.op("Squeeze", [b.dim_expression(item), b.ints([0])])],
                                    to=_onnx_type(b.onnx, dtype)))
            elif kind == "const":
                scalars.append(b.const(np.asarray(item, dtype=dtype), "range"))
            else:
                raise _unsupported(node, f"arange with a bound given as {kind}")
        return [b.op("Range", scalars)]
    raise _unsupported(node, f"dtorch.{function} in the forward with sizes taken from its inputs (random numbers "
                             "are not exported)")


CONVERTERS = {
    **{name: _binary(op) for name, op in _BINARY.items()},
    **{name: _unary(op) for name, op in _UNARY.items()},
    "Pow": _pow, "Rsqrt": _rsqrt, "Log1p": _log1p, "Silu": _silu, "Gelu": _gelu, "Softplus": _softplus,
    "LeakyRelu": _leaky_relu, "Elu": _elu, "Hardtanh": _clip("min_val", "max_val"), "Clamp": _clip("min", "max"),
    "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"), "Cast": _cast, "Where": _where,
    "Linear": _linear, "MatMul": _matmul, "Conv2d": _conv2d, "MaxPool2d": _max_pool,
    "MaxPool2dWithIndices": _max_pool, "AvgPool2d": _avg_pool, "AdaptiveAvgPool2d": _adaptive_avg_pool,
    "BatchNorm": _batch_norm, "LayerNorm": _layer_norm, "Embedding": _embedding,
    "Reshape": _reshape, "Expand": _expand, "Permute": _permute, "Cat": _cat, "Stack": _stack,
    "Sum": _reduce("ReduceSum"), "Mean": _reduce("ReduceMean"), "Index": _index,
    "Compare": _compare, "ZeroGradUnary": _zero_grad_unary, "MaxMin": _max_min, "ArgExtreme": _arg_extreme,
    "Repeat": _repeat, "ConstantPad": _constant_pad, "ScaledDotProductAttention": _scaled_dot_product_attention,
    "nn.LSTM": _rnn, "nn.GRU": _rnn, "nn.RNN": _rnn, "nn.MultiheadAttention": _multihead_attention,
    "nn.factory": _factory,
}


def _dims(shape, axes):
    """Dims for a value info: named where ``axes`` names the axis, the traced size otherwise."""
    return [axes.get(i, size) for i, size in enumerate(shape)]


def _normalize_axes(dynamic_axes, known):
    result = {}
    for name, axes in dynamic_axes.items():
        if name not in known:
            raise ValueError(f"dynamic_axes names {name!r}, which is neither an input nor an output name "
                             f"({sorted(known)})")
        if isinstance(axes, dict):
            result[name] = {int(a): str(label) for a, label in axes.items()}
        else:
            result[name] = {int(a): f"{name}_dynamic_axes_{i + 1}" for i, a in enumerate(axes)}
    return result


def build_model(onnx, capture, module, opset, ir_version, input_names, output_names, dynamic_axes):
    """The ModelProto of a finished capture."""
    helper = onnx.helper
    graph = capture.graph
    b = Builder(onnx, capture, module, opset)
    names = list(input_names or graph.input_names)
    if len(names) < len(graph.inputs):
        names += [f"input_{i}" for i in range(len(names), len(graph.inputs))]
    outputs = graph.output_values()
    out_names = list(output_names or (["output"] if len(outputs) == 1 else
                                      [f"output_{i}" for i in range(len(outputs))]))
    if len(out_names) < len(outputs):
        out_names += [f"output_{i}" for i in range(len(out_names), len(outputs))]
    axes = _normalize_axes(dynamic_axes, set(names[:len(graph.inputs)]) | set(out_names[:len(outputs)]))
    for value, name in zip(graph.inputs, names):
        b.bound[value] = name
    for node in graph.nodes:
        convert = CONVERTERS.get(node["op"])
        if convert is None:
            from dtorch.onnx import UnsupportedOperatorError

            raise UnsupportedOperatorError(
                f"Exporting the operator {node['op']!r} to ONNX opset version {opset} is not supported: dtorch.onnx "
                f"has no converter for it (ops with converters: {', '.join(sorted(CONVERTERS))})"
            )
        if node["op"] in _modules_ops():
            attrs = node["attrs"]
        else:
            attrs = {k: _graph.decode(v) for k, v in node["attrs"].items()}
        results = convert(b, node, node["inputs"], attrs)
        for ref, name in zip(node["outputs"], results):
            if ref is not None and name is not None:
                b.bound[ref] = name
    output_infos = []
    dynamic = any(name in axes for name in names)
    for value, name in zip(outputs, out_names):
        source = b.value(value)
        b.nodes.append(helper.make_node("Identity", [source], [name]))
        shape, dtype = b.info(value)
        named = axes.get(name, {})
        dims = [named.get(i, None if dynamic else size) for i, size in enumerate(shape)]
        output_infos.append(helper.make_tensor_value_info(name, _onnx_type(onnx, dtype), dims))
    input_infos = []
    for value, name in zip(graph.inputs, names):
        shape, dtype = b.info(value)
        input_infos.append(helper.make_tensor_value_info(name, _onnx_type(onnx, dtype),
                                                         _dims(shape, axes.get(name, {}))))
    onnx_graph = helper.make_graph(b.nodes, "main_graph", input_infos, output_infos,
                                   initializer=list(b.initializers.values()))
    import dtorch

    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version,
                              producer_name="dtorch", producer_version=getattr(dtorch, "__version__", "0"))
    return model


def _modules_ops():
    from dtorch.jit import _modules

    return _modules.MODULE_OPS
