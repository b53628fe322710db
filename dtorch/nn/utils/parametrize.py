"""``nn.utils.parametrize``: a module attribute computed by small modules from the tensors it is stored as.

``register_parametrization(module, "weight", P)`` moves the parameter to ``module.parametrizations.weight.original``
(or ``original0``, ``original1``, ... when ``P.right_inverse`` splits it, as weight norm does) and makes
``module.weight`` a property that returns ``P(original)`` on every read, so gradients reach ``original``.
Assigning ``module.weight = value`` stores ``right_inverse(value)`` instead. The property lives on a subclass
``Parametrized<Class>`` made for the module (the module's class is swapped, as PyTorch does), so other instances
of the class are untouched; removing the last parametrization swaps the original class back.

Inside ``with cached():`` each parametrized tensor is computed once and reused (one forward of a recurrent model
then reads its parametrized weight once per step without recomputing it); the cache is dropped on exit.
"""

import contextlib

from dtorch.autograd.grad_mode import no_grad
from dtorch.nn.modules.container import ModuleDict, ModuleList
from dtorch.nn.parameter import Parameter
from dtorch.tensor import Tensor

__all__ = ["register_parametrization", "remove_parametrizations", "is_parametrized", "cached",
           "ParametrizationList", "type_before_parametrizations"]

_cache_depth = 0
_cache = {}


@contextlib.contextmanager
def cached():
    """Compute each parametrized tensor once inside the block and reuse it.

    >>> import dtorch
    >>> from dtorch.nn.utils import parametrize
    >>> class Double(dtorch.nn.Module):
    ...     def forward(self, x):
    ...         return 2 * x
    >>> m = parametrize.register_parametrization(dtorch.nn.Linear(2, 2), "weight", Double())
    >>> with parametrize.cached():
    ...     m.weight is m.weight
    True
    """
    global _cache_depth
    _cache_depth += 1
    try:
        yield
    finally:
        _cache_depth -= 1
        if not _cache_depth:
            _cache.clear()


def _register_parameter_or_buffer(module, name, value):
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


def _set_storage(destination, source):
    """Make ``destination`` hold ``source``'s values, keeping the object (optimizers hold it)."""
    with no_grad():
        if destination.shape == source.shape and destination.dtype == source.dtype:
            destination.copy_(source)
        else:
            destination.data = source.detach().clone()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to the stored ``original`` tensor(s).

    Created by ``register_parametrization``; holds ``original`` (or ``original0``, ``original1``, ... when the
    first parametrization's ``right_inverse`` returns several tensors).
    """

    def __init__(self, modules, original, unsafe=False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = original.shape, original.dtype
        with no_grad():
            new = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
        if not isinstance(new, (Tensor, tuple, list)):
            raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                             f"Got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if original.dtype != new.dtype:
                raise ValueError("When `right_inverse` outputs one tensor, it may not change the dtype.\n"
                                 f"original.dtype: {original.dtype}\nright_inverse(original).dtype: {new.dtype}")
            _set_storage(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for index, value in enumerate(new):
                if not isinstance(value, Tensor):
                    raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors (list, "
                                     f"tuple...). Got element {index} of the sequence with type "
                                     f"{type(value).__name__}.")
                value = value.detach().clone()
                if isinstance(original, Parameter):
                    value = Parameter(value, original.requires_grad)
                else:
                    value.requires_grad_(original.requires_grad)
                _register_parameter_or_buffer(self, f"original{index}", value)
        if not self.unsafe:
            result = self()
            if not isinstance(result, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(result).__name__}.")
            if result.dtype != original_dtype:
                raise ValueError("Registering a parametrization may not change the dtype of the tensor, unless "
                                 f"`unsafe` flag is enabled.\nunparametrized dtype: {original_dtype}\n"
                                 f"parametrized dtype: {result.dtype}")
            if result.shape != original_shape:
                raise ValueError("Registering a parametrization may not change the shape of the tensor, unless "
                                 f"`unsafe` flag is enabled.\nunparametrized shape: {original_shape}\n"
                                 f"parametrized shape: {result.shape}")

    def right_inverse(self, value):
        """Store ``value`` as the parametrized tensor: the ``right_inverse`` of each parametrization, last first."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
                if value.dtype != self.original.dtype:
                    raise ValueError(f"The tensor returned by `right_inverse` has dtype {value.dtype} while "
                                     f"`original` has dtype {self.original.dtype}")
                _set_storage(self.original, value)
                return
            if not isinstance(value, (tuple, list)):
                raise ValueError(f"'right_inverse' must return a sequence of tensors. Got {type(value).__name__}.")
            if len(value) != self.ntensors:
                raise ValueError(f"'right_inverse' must return a sequence of tensors of length {self.ntensors}. "
                                 f"Got a sequence of length {len(value)}.")
            for index, tensor in enumerate(value):
                original = getattr(self, f"original{index}")
                if original.dtype != tensor.dtype:
                    raise ValueError(f"Tensor {index} returned by `right_inverse` has dtype {tensor.dtype} while "
                                     f"`original{index}` has dtype {original.dtype}")
                _set_storage(original, tensor)

    def forward(self):
        modules = list(self)
        if self.is_tensor:
            value = modules[0](self.original)
        else:
            value = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            value = module(value)
        return value


def _inject_new_class(module):
    """Swap ``module``'s class for a fresh subclass that can carry the parametrized properties."""
    cls = module.__class__
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), {"__module__": cls.__module__})


def _inject_property(module, tensor_name):
    def get_parametrized(self):
        parametrization = self.parametrizations[tensor_name]
        if not _cache_depth:
            return parametrization()
        key = (id(self), tensor_name)
        value = _cache.get(key)
        if value is None:
            value = _cache[key] = parametrization()
        return value

    def set_original(self, value):
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def is_parametrized(module, tensor_name=None):
    """True when ``module`` has a parametrization (on ``tensor_name``, when given).

    >>> import dtorch
    >>> is_parametrized(dtorch.nn.Linear(2, 2))
    False
    """
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def type_before_parametrizations(module):
    """The module's class before any parametrization swapped it."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Make ``module.<tensor_name>`` be ``parametrization(original)``, ``original`` the tensor stored until now.

    A second registration on the same name chains: the new parametrization is applied to the result of the
    earlier ones. ``unsafe=True`` skips the checks that the result keeps the tensor's shape and dtype.

    >>> import dtorch
    >>> class Symmetric(dtorch.nn.Module):
    ...     def forward(self, x):
    ...         return x.triu() + x.triu(1).mT
    >>> m = register_parametrization(dtorch.nn.Linear(3, 3), "weight", Symmetric())
    >>> bool((m.weight == m.weight.T).all()), type(m).__name__
    (True, 'ParametrizedLinear')
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            current = getattr(module, tensor_name)
            result = parametrization(current)
            if not isinstance(result, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(result).__name__}.")
            if result.dtype != current.dtype:
                raise ValueError("Registering a parametrization may not change the dtype of the tensor, unless "
                                 f"`unsafe` flag is enabled.\nunparametrized dtype: {current.dtype}\n"
                                 f"parametrized dtype: {result.dtype}")
            if result.shape != current.shape:
                raise ValueError("Registering a parametrization may not change the shape of the tensor, unless "
                                 f"`unsafe` flag is enabled.\nunparametrized shape: {current.shape}\n"
                                 f"parametrized shape: {result.shape}")
        parametrizations = module.parametrizations[tensor_name]
        parametrizations.append(parametrization)
        parametrizations.unsafe = parametrizations.unsafe or unsafe
    elif tensor_name in module._parameters or tensor_name in module._buffers:
        original = getattr(module, tensor_name)
        parametrizations = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = parametrizations
    else:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element with name "
                         f"'{tensor_name}'")
    return module


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Undo ``register_parametrization`` on ``tensor_name``: the tensor becomes a plain parameter (or buffer)
    again, holding the parametrized value (``leave_parametrized=True``) or the stored original.

    >>> import dtorch
    >>> class Double(dtorch.nn.Module):
    ...     def forward(self, x):
    ...         return 2 * x
    >>> m = dtorch.nn.Linear(2, 2)
    >>> before = m.weight.detach().clone()
    >>> _ = register_parametrization(m, "weight", Double())
    >>> m = remove_parametrizations(m, "weight")
    >>> bool((m.weight == 2 * before).all()), type(m).__name__
    (True, 'Linear')
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    parametrizations = module.parametrizations[tensor_name]
    if parametrizations.is_tensor:
        original = parametrizations.original
        if leave_parametrized:
            with no_grad():
                value = getattr(module, tensor_name)
            _set_storage(original, value)
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is parametrized "
                             "in terms of a sequence of tensors.")
        with no_grad():
            value = getattr(module, tensor_name).detach().clone()
        requires_grad = any(getattr(parametrizations, f"original{i}").requires_grad
                            for i in range(parametrizations.ntensors))
        original = Parameter(value, requires_grad) if requires_grad else value
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module
