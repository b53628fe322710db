"""The older hook-based ``nn.utils.weight_norm`` (deprecated in PyTorch in favour of
``nn.utils.parametrizations.weight_norm``, and warning as it does): parameters ``<name>_g`` and ``<name>_v``, and a
forward pre-hook that recomputes ``module.<name> = g * v / |v|`` before every forward."""


from dtorch.nn.parameter import Parameter
from dtorch.nn.utils.parametrizations import _WeightNorm, norm_except_dim
from dtorch._warnings import warn as _warn

__all__ = ["weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook of ``weight_norm``: recomputes the weight from ``<name>_g`` and ``<name>_v``."""

    def __init__(self, name, dim):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module):
        return _WeightNorm(self.dim).forward(getattr(module, self.name + "_g"), getattr(module, self.name + "_v"))

    def remove(self, module):
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module, name="weight", dim=0):
    """Split ``module.<name>`` into ``<name>_g`` (magnitudes) and ``<name>_v`` (directions), recombined before
    each forward. Deprecated in PyTorch (a FutureWarning here too): prefer
    ``nn.utils.parametrizations.weight_norm``.

    >>> import dtorch, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     m = weight_norm(dtorch.nn.Linear(3, 2))
    >>> sorted(name for name, _ in m.named_parameters())
    ['bias', 'weight_g', 'weight_v']
    """
    _warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
          "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning)
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    fn = WeightNorm(name, dim)
    weight = getattr(module, name)
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim).detach()))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    setattr(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module, name="weight"):
    """Undo ``weight_norm``: ``<name>`` becomes a plain parameter holding the current weight."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"weight_norm of '{name}' not found in {module}")
