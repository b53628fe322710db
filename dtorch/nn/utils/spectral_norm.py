"""The older hook-based ``nn.utils.spectral_norm``: parameter ``<name>_orig``, buffers ``<name>_u`` and
``<name>_v``, and a forward pre-hook that sets ``module.<name> = <name>_orig / sigma`` before every forward (with
``n_power_iterations`` power iterations first in training mode), as PyTorch's."""

from dtorch import factories
from dtorch import functional as F
from dtorch.autograd.grad_mode import no_grad
from dtorch.nn import functional as NF
from dtorch.nn.parameter import Parameter
from dtorch.nn.utils.parametrizations import _weight_as_matrix

__all__ = ["spectral_norm", "remove_spectral_norm"]


class SpectralNorm:
    """The forward pre-hook of ``spectral_norm``."""

    def __init__(self, name="weight", n_power_iterations=1, dim=0, eps=1e-12):
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.n_power_iterations, self.eps = name, dim, n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight):
        return _weight_as_matrix(weight, self.dim)

    def compute_weight(self, module, do_power_iteration):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        matrix = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):  # v first, then u: PyTorch's order here
                    v.copy_(NF.normalize(F.matmul(F.t(matrix), u), dim=0, eps=self.eps))
                    u.copy_(NF.normalize(F.matmul(matrix, v), dim=0, eps=self.eps))
            u, v = F.clone(u), F.clone(v)
        sigma = F.dot(u, F.matmul(matrix, v))
        return F.div(weight, sigma)

    def remove(self, module):
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module, inputs):
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divide ``module.<name>`` by its largest singular value (power iteration) before every forward; ``dim``
    defaults to 1 for transposed convolutions, else 0. ``<name>_u``/``<name>_v`` start random, as in PyTorch.

    >>> import dtorch
    >>> m = spectral_norm(dtorch.nn.Linear(4, 3))
    >>> sorted(name for name, _ in m.named_parameters()), sorted(name for name, _ in m.named_buffers())
    (['bias', 'weight_orig'], ['weight_u', 'weight_v'])
    """
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    weight = module._parameters[name]
    with no_grad():
        rows, columns = fn.reshape_weight_to_matrix(weight).shape
        u = NF.normalize(factories.randn(rows, dtype=weight.dtype, device=weight.device), dim=0, eps=eps)
        v = NF.normalize(factories.randn(columns, dtype=weight.dtype, device=weight.device), dim=0, eps=eps)
    delattr(module, name)
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module, name="weight"):
    """Undo ``spectral_norm``: ``<name>`` becomes a plain parameter holding the normalised weight."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"spectral_norm of '{name}' not found in {module}")
