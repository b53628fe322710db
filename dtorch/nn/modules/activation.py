"""Activation modules: thin wrappers that call ``dtorch.nn.functional`` with their stored arguments.

``inplace=True`` is accepted and passed on (PyTorch's flag); ``Softmax``/``LogSoftmax`` without ``dim`` pick
PyTorch's legacy implicit dimension with its deprecation warning.
"""


from dtorch import factories
from dtorch.nn import functional as F
from dtorch.nn import init as nn_init
from dtorch.nn.modules.module import Module
from dtorch.nn.parameter import Parameter
from dtorch._warnings import warn as _warn

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Softplus",
           "Softmax", "LogSoftmax", "Hardtanh", "SELU", "CELU", "Threshold", "GLU", "Softmin", "Hardsigmoid",
           "Hardswish", "LogSigmoid", "Softsign", "Tanhshrink", "Hardshrink", "Softshrink", "PReLU", "RReLU",
           "Softmax2d"]


def _inplace_repr(inplace, leading=""):
    return leading + "inplace=True" if inplace else ""


class ReLU(Module):
    """``max(x, 0)`` elementwise.

    >>> import dtorch
    >>> dtorch.nn.ReLU()(dtorch.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class Hardtanh(Module):
    """Clamp to ``[min_val, max_val]``.

    >>> import dtorch
    >>> dtorch.nn.Hardtanh(-2, 2)(dtorch.tensor([-3.0, 1.0, 3.0])).tolist()
    [-2.0, 1.0, 2.0]
    """

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if max_val <= min_val:
            raise ValueError("max_val must be greater than min_val")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + _inplace_repr(self.inplace, ", ")


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)``.

    >>> import dtorch
    >>> dtorch.nn.ReLU6()(dtorch.tensor([-1.0, 3.0, 7.0])).tolist()
    [0.0, 3.0, 6.0]
    """

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class LeakyReLU(Module):
    """``x`` for positive ``x``, ``negative_slope * x`` otherwise.

    >>> import dtorch
    >>> dtorch.nn.LeakyReLU(0.1)
    LeakyReLU(negative_slope=0.1)
    """

    def __init__(self, negative_slope=1e-2, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + _inplace_repr(self.inplace, ", ")


class ELU(Module):
    """``x`` for positive ``x``, ``alpha * (exp(x) - 1)`` otherwise.

    >>> import dtorch
    >>> dtorch.nn.ELU(alpha=0.5)
    ELU(alpha=0.5)
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + _inplace_repr(self.inplace, ", ")


class GELU(Module):
    """Gaussian error linear unit; ``approximate='tanh'`` uses the tanh formula.

    >>> import dtorch
    >>> dtorch.nn.GELU(approximate="tanh")
    GELU(approximate='tanh')
    """

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """``x * sigmoid(x)`` (swish).

    >>> import dtorch
    >>> dtorch.nn.SiLU()(dtorch.zeros(2)).tolist()
    [0.0, 0.0]
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input, inplace=self.inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class Mish(Module):
    """``x * tanh(softplus(x))``.

    >>> import dtorch
    >>> dtorch.nn.Mish()(dtorch.zeros(2)).tolist()
    [0.0, 0.0]
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.mish(input, inplace=self.inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``.

    >>> import dtorch
    >>> dtorch.nn.Sigmoid()(dtorch.zeros(2)).tolist()
    [0.5, 0.5]
    """

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent.

    >>> import dtorch
    >>> dtorch.nn.Tanh()(dtorch.zeros(1)).tolist()
    [0.0]
    """

    def forward(self, input):
        return F.tanh(input)


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear above ``threshold`` (of ``beta * x``).

    >>> import dtorch
    >>> dtorch.nn.Softplus(beta=2.0, threshold=10.0)
    Softplus(beta=2.0, threshold=10.0)
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


def _implicit_dim(name, ndim):
    _warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
    )
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """``exp(x) / sum(exp(x))`` along ``dim``.

    >>> import dtorch
    >>> round(dtorch.nn.Softmax(dim=-1)(dtorch.zeros(1, 4))[0, 0].item(), 2)
    0.25
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        dim = self.dim if self.dim is not None else _implicit_dim("softmax", input.dim())
        return F.softmax(input, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably.

    >>> import dtorch
    >>> round(dtorch.nn.LogSoftmax(dim=1)(dtorch.zeros(1, 2))[0, 0].item(), 4)
    -0.6931
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        dim = self.dim if self.dim is not None else _implicit_dim("log_softmax", input.dim())
        return F.log_softmax(input, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class SELU(Module):
    """Scaled ELU with the self-normalising constants (``scale`` 1.0507..., ``alpha`` 1.6732...).

    >>> import dtorch
    >>> dtorch.nn.SELU()(dtorch.zeros(1)).tolist()
    [0.0]
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.selu(input, self.inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class CELU(Module):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.

    >>> import dtorch
    >>> dtorch.nn.CELU(alpha=0.5)
    CELU(alpha=0.5)
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + _inplace_repr(self.inplace, ", ")


class Threshold(Module):
    """``x`` where ``x > threshold``, else ``value``.

    >>> import dtorch
    >>> dtorch.nn.Threshold(0.1, 20.0)(dtorch.tensor([0.0, 1.0])).tolist()
    [20.0, 1.0]
    """

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}" + _inplace_repr(self.inplace, ", ")


class GLU(Module):
    """Gated linear unit: split ``dim`` in halves ``a``, ``b`` and return ``a * sigmoid(b)``.

    >>> import dtorch
    >>> dtorch.nn.GLU()(dtorch.zeros(2, 4)).shape
    dtorch.Size([2, 2])
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmin(Module):
    """``softmax(-x)`` along ``dim``.

    >>> import dtorch
    >>> dtorch.nn.Softmin(dim=0)(dtorch.zeros(2)).tolist()
    [0.5, 0.5]
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        dim = self.dim if self.dim is not None else _implicit_dim("softmin", input.dim())
        return F.softmin(input, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class _Elementwise(Module):
    """An activation without arguments in its repr (``inplace`` is accepted where PyTorch accepts it)."""

    _functional = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        function = getattr(F, self._functional)
        return function(input, self.inplace) if self.inplace else function(input)


class Hardsigmoid(_Elementwise):
    """``relu6(x + 3) / 6``.

    >>> import dtorch
    >>> dtorch.nn.Hardsigmoid()(dtorch.zeros(1)).tolist()
    [0.5]
    """

    _functional = "hardsigmoid"


class Hardswish(_Elementwise):
    """``x * relu6(x + 3) / 6``.

    >>> import dtorch
    >>> dtorch.nn.Hardswish()(dtorch.tensor([3.0])).tolist()
    [3.0]
    """

    _functional = "hardswish"


class LogSigmoid(Module):
    """``log(sigmoid(x))``, computed stably.

    >>> import dtorch
    >>> round(dtorch.nn.LogSigmoid()(dtorch.zeros(1)).item(), 4)
    -0.6931
    """

    def forward(self, input):
        return F.logsigmoid(input)


class Softsign(Module):
    """``x / (1 + |x|)``.

    >>> import dtorch
    >>> dtorch.nn.Softsign()(dtorch.tensor([1.0])).tolist()
    [0.5]
    """

    def forward(self, input):
        return F.softsign(input)


class Tanhshrink(Module):
    """``x - tanh(x)``.

    >>> import dtorch
    >>> dtorch.nn.Tanhshrink()(dtorch.zeros(1)).tolist()
    [0.0]
    """

    def forward(self, input):
        return F.tanhshrink(input)


class Hardshrink(Module):
    """``x`` where ``|x| > lambd``, else 0.

    >>> import dtorch
    >>> dtorch.nn.Hardshrink()(dtorch.tensor([-1.0, 0.2])).tolist()
    [-1.0, 0.0]
    """

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.hardshrink(input, self.lambd)

    def extra_repr(self):
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0.

    >>> import dtorch
    >>> dtorch.nn.Softshrink()(dtorch.tensor([-1.0, 0.2])).tolist()
    [-0.5, 0.0]
    """

    def forward(self, input):
        return F.softshrink(input, self.lambd)


class PReLU(Module):
    """``max(0, x) + weight * min(0, x)`` with a learned slope, one for all channels or one per channel.

    >>> import dtorch
    >>> dtorch.nn.PReLU()(dtorch.tensor([-4.0, 2.0])).tolist()
    [-1.0, 2.0]
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(factories.empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        nn_init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Leaky ReLU with a random slope from ``U(lower, upper)`` in training, ``(lower + upper) / 2`` in eval mode.

    >>> import dtorch
    >>> dtorch.nn.RReLU(0.1, 0.3).eval()(dtorch.tensor([-1.0, 2.0])).tolist()
    [-0.20000000298023224, 2.0]
    """

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + _inplace_repr(self.inplace, ", ")


class Softmax2d(Module):
    """Softmax over the channels of ``(N, C, H, W)`` or ``(C, H, W)`` input, at every location.

    >>> import dtorch
    >>> dtorch.nn.Softmax2d()(dtorch.zeros(2, 3, 3)).sum(0)[0, 0].item()
    1.0
    """

    def forward(self, input):
        if input.dim() not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.dim()}D instead")
        return F.softmax(input, -3)
