"""``ScriptModule``/``TracedModule``: an ``nn.Module`` whose forward replays a recorded ``Graph``.

Its parameters and buffers keep the names the traced model gave them (``fc1.weight`` sits on a submodule
``fc1``), so ``state_dict()`` matches the original's and loads into it; ``to()``, ``eval()``, ``parameters()``
are ``Module``'s. Replay calls each op's ``apply``, so gradients reach the parameters (a loaded model can be
fine-tuned). Constants (tensors the forward made itself) travel with the module but are not in its state_dict.
"""

from dtorch.jit import _graph
from dtorch.nn.modules.module import Module
from dtorch.nn.parameter import Parameter
from dtorch.tensor import Tensor


class _Submodule(Module):
    """A level of the original module hierarchy; holds parameters and buffers only."""

    def __init__(self, original_name="Module"):
        super().__init__()
        self.original_name = original_name

    def _get_name(self):
        return self.original_name

    def extra_repr(self):
        return f"original_name={self.original_name}"

    def forward(self, *args):
        raise RuntimeError(f"{self.original_name} inside a traced module has no forward of its own; call the whole "
                           "traced module")


def _owner(root, dotted, kinds):
    """The (created on demand) submodule of ``root`` that holds attribute ``dotted``, and the attribute name."""
    *path, leaf = dotted.split(".")
    module = root
    for depth, part in enumerate(path):
        child = module._modules.get(part)
        if child is None:
            child = _Submodule(kinds.get(".".join(path[:depth + 1]), "Module"))
            module._modules[part] = child
        module = child
    return module, leaf


class ScriptModule(Module):
    """A module running a recorded graph (what ``jit.trace`` returns and ``jit.load`` gives back).

    ``graph`` prints the recorded ops; ``code`` shows them as Python-like source; ``save(f)`` is ``jit.save``.
    """

    def __init__(self, graph, parameters, buffers, constants, name="Module", training=False, module_names=None):
        super().__init__()
        self._graph_data = graph
        self._runner = _graph.GraphRunner(graph)
        self._original_name = name
        names = module_names or {}
        self._places = {}
        for module_name in names:  # the original hierarchy, parameterless layers (ReLU, Dropout) included
            _owner(self, module_name + ".-", names)
        as_parameter = {}  # one Parameter per tensor, so tied weights stay tied
        for param_name, tensor in parameters.items():
            owner, leaf = _owner(self, param_name, names)
            if not isinstance(tensor, Parameter):
                if id(tensor) not in as_parameter:
                    as_parameter[id(tensor)] = Parameter(tensor, requires_grad=tensor.requires_grad)
                tensor = as_parameter[id(tensor)]
            owner._parameters[leaf] = tensor
            self._places[param_name] = (owner._parameters, leaf)
        for buffer_name, tensor in buffers.items():
            owner, leaf = _owner(self, buffer_name, names)
            owner._buffers[leaf] = tensor
            self._places[buffer_name] = (owner._buffers, leaf)
        self._constants = dict(constants)
        self.training = training
        for module in self.modules():
            module.training = training

    # ---- graph and code ----------------------------------------------------------------------------------------

    @property
    def graph(self):
        """The recorded graph (``print(m.graph)`` lists one node per line)."""
        return self._graph_data

    @property
    def inlined_graph(self):
        return self._graph_data

    @property
    def code(self):
        """The forward as Python-like source, one recorded op per line."""
        return self._graph_data.code()

    def _get_name(self):
        return self._original_name

    def save(self, f, _extra_files=None):
        """Save to ``f`` (a path or a binary file); the same as ``dtorch.jit.save(self, f)``."""
        from dtorch.jit._serialization import save

        save(self, f, _extra_files=_extra_files)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        from dtorch.autograd import grad_mode

        with grad_mode.no_grad():
            self._constants = {k: fn(v) for k, v in self._constants.items()}
        return self

    # ---- running -----------------------------------------------------------------------------------------------

    def _environment(self):
        graph = self._graph_data
        env = {}
        for table in (graph.parameters, graph.buffers):
            for name, value in table.items():
                holder, leaf = self._places[name]
                env[value] = holder[leaf]
        for name, value in graph.constants.items():
            env[value] = self._constants[name]
        return env

    def forward(self, *args):
        graph = self._graph_data
        env = self._environment()
        flat = []
        _flatten_inputs(graph.input_tree, args, flat, self._original_name)
        for value, tensor in zip(graph.inputs, flat):
            env[value] = tensor
        self._runner(env)
        return _graph.unflatten(graph.output_tree, env.__getitem__)

    def extra_repr(self):
        return f"original_name={self._original_name}"


def _flatten_inputs(tree, args, out, name):
    """Check ``args`` against the recorded input structure and collect its Tensors in order."""
    (kind, items), = tree.items()
    if not isinstance(args, (tuple, list)) or len(args) != len(items):
        count = len(args) if isinstance(args, (tuple, list)) else 1
        raise RuntimeError(f"{name}.forward() expected {len(items)} argument(s), got {count}")
    for item, arg in zip(items, args):
        if isinstance(item, str):
            if not isinstance(arg, Tensor):
                raise RuntimeError(
                    f"{name}.forward() expected a Tensor argument, got {type(arg).__name__}"
                )
            out.append(arg)
        else:
            _flatten_inputs(item, arg, out, name)


class TracedModule(ScriptModule):
    """What ``dtorch.jit.trace`` returns for a module."""
