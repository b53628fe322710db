"""Layers recorded as one graph node each: ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` and ``nn.MultiheadAttention``.

Their forwards build states, slice packed outputs and reshape by sequence length; recorded op by op, those sizes
would be baked into the graph. Recorded whole, the node keeps the layer's configuration (``config``), its
arguments (``args``: a structure whose ``{"input": k}`` leaves are the node's inputs) and the names of its
parameters (the node's remaining inputs); replay builds the layer once from ``config`` and calls it with the
graph's parameter Tensors put in place, so gradients reach them.
"""

import warnings

from dtorch.tensor import Tensor


def _rnn_config(module):
    config = {
        "input_size": module.input_size, "hidden_size": module.hidden_size, "num_layers": module.num_layers,
        "bias": module.bias, "batch_first": module.batch_first, "dropout": float(module.dropout),
        "bidirectional": module.bidirectional,
    }
    if module.mode == "LSTM":
        config["proj_size"] = module.proj_size
    if module.mode in ("RNN_TANH", "RNN_RELU"):
        config["nonlinearity"] = module.nonlinearity
    return config


def _mha_config(module):
    return {
        "embed_dim": module.embed_dim, "num_heads": module.num_heads, "dropout": float(module.dropout),
        "bias": module.in_proj_bias is not None, "add_bias_kv": module.bias_k is not None,
        "add_zero_attn": bool(module.add_zero_attn), "kdim": module.kdim, "vdim": module.vdim,
        "batch_first": bool(module.batch_first),
    }


def _classes():
    from dtorch import nn

    return {
        "nn.RNN": (nn.RNN, _rnn_config),
        "nn.LSTM": (nn.LSTM, _rnn_config),
        "nn.GRU": (nn.GRU, _rnn_config),
        "nn.MultiheadAttention": (nn.MultiheadAttention, _mha_config),
    }


def recorded_name(module):
    """The node name for ``module`` when it is recorded whole, else None."""
    for name, (cls, _) in _classes().items():
        if type(module) is cls:
            return name
    return None


def describe(module, arguments, input_of):
    """The attrs of a whole-module node and its inputs: argument Tensors, then the layer's parameters.

    ``arguments`` maps forward's parameter names to the call's values; ``input_of(tensor)`` names a Tensor.
    """
    name = recorded_name(module)
    config = _classes()[name][1](module)
    inputs = []

    def encode_argument(value):
        if isinstance(value, Tensor):
            inputs.append(input_of(value))
            return {"input": len(inputs) - 1}
        if isinstance(value, tuple):
            return {"tuple": [encode_argument(v) for v in value]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return {"const": value}
        raise RuntimeError(
            f"{type(module).__name__} was called with a {type(value).__name__}, which a traced graph cannot hold "
            "(PackedSequence inputs cannot be traced: pad the batch instead)"
        )

    args = {key: encode_argument(value) for key, value in arguments.items()}
    parameters = []
    for param_name, param in module.named_parameters():
        parameters.append(param_name)
        inputs.append(input_of(param))
    attrs = {"config": config, "training": bool(module.training), "args": args, "parameters": parameters}
    return name, inputs, attrs


def _rebuild_argument(tree, values):
    (kind, item), = tree.items()
    if kind == "input":
        return values[item]
    if kind == "tuple":
        return tuple(_rebuild_argument(t, values) for t in item)
    return item


class ModuleRunner:
    """Replays a whole-module node: a layer built from ``config`` whose parameters are the node's inputs."""

    def __init__(self, name, attrs):
        cls = _classes()[name][0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. RNN dropout with one layer: warned when the model was built
            self.module = cls(**attrs["config"])
        self.module.train(attrs["training"])
        self.args = attrs["args"]
        self.owners = [self.module._owner_and_name(p) for p in attrs["parameters"]]

    def __call__(self, inputs):
        values = list(inputs)
        count = len(values) - len(self.owners)
        for (owner, leaf), tensor in zip(self.owners, values[count:]):
            owner._parameters[leaf] = tensor
        kwargs = {key: _rebuild_argument(tree, values) for key, tree in self.args.items()}
        output = self.module(**kwargs)
        return output_leaves(output)


def output_leaves(output):
    """Every Tensor or None of an output structure, in order (None keeps positions, e.g. MHA's weights)."""
    if isinstance(output, tuple):
        return [leaf for item in output for leaf in output_leaves(item)]
    return [output]


class DropoutMaskRunner:
    """``nn.dropout_mask``: a fresh ``keep / (1 - p)`` mask per call, shaped like the input (-1) or 1 per axis."""

    def __init__(self, attrs):
        self.p = attrs["p"]
        self.shape = attrs["shape"]

    def __call__(self, inputs):
        from dtorch.nn import functional

        x = inputs[0]
        shape = tuple(x._array.shape[i] if s == -1 else s for i, s in enumerate(self.shape))
        return [functional._dropout_mask(x, self.p, shape)]


class FactoryRunner:
    """``nn.factory``: ``dtorch.<function>(*args, **kwargs)`` with sizes evaluated from the actual tensors."""

    def __init__(self, attrs):
        self.function = attrs["function"]
        self.args = attrs["args"]
        self.kwargs = attrs["kwargs"]
        self.refs = attrs["refs"]

    def __call__(self, inputs):
        import dtorch
        from dtorch.jit._graph import evaluate

        env = dict(zip(self.refs, inputs))

        def build(tree):
            (kind, item), = tree.items()
            if kind == "input":
                return inputs[item]
            if kind == "sym":
                return evaluate(item, env)
            if kind == "tuple":
                return tuple(build(t) for t in item)
            if kind == "dtype":
                return getattr(dtorch, item)
            if kind == "device":
                return dtorch.device(item)
            return item

        args = [build(t) for t in self.args]
        kwargs = {key: build(t) for key, t in self.kwargs.items()}
        return [getattr(dtorch, self.function)(*args, **kwargs)]


MODULE_OPS = {name: (lambda attrs, name=name: ModuleRunner(name, attrs)) for name in
              ("nn.RNN", "nn.LSTM", "nn.GRU", "nn.MultiheadAttention")}
MODULE_OPS["nn.dropout_mask"] = DropoutMaskRunner
MODULE_OPS["nn.factory"] = FactoryRunner
