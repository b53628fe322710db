"""Every differentiable operation of dtorch, one ``Op`` each, grouped by kind.

The public front ends (``dtorch.add``, ``Tensor.__add__``, ``nn.functional.relu``) live in ``dtorch.functional``
and ``dtorch.nn.functional``; they resolve arguments to plain data and call ``Op.apply``.

Floating-point errors: PyTorch computes ``log(0) = -inf``, ``1 / 0 = inf``, ``sqrt(-1) = nan`` silently, while NumPy
warns. The filter below drops exactly those NumPy warnings ("divide by zero / invalid value / overflow / underflow
encountered in ...") when they are raised from dtorch's own code, and nothing else: the user's NumPy calls still
warn. A filter costs nothing on the ops' path (it is consulted only when NumPy has already decided to warn), where
``np.errstate`` around every op that can warn would add its cost to every call.
"""

import warnings

warnings.filterwarnings(
    "ignore",
    message=r"(divide by zero|invalid value|overflow|underflow) encountered in",
    category=RuntimeWarning,
    module=r"dtorch(\.|$)",
)
# a complex gradient reaching a real tensor keeps its real part (PyTorch's rule): NumPy's cast says so, quietly here
warnings.filterwarnings("ignore", message="Casting complex values to real discards the imaginary part",
                        module=r"dtorch(\.|$)")

from dtorch.ops import device, elementwise, indexing, linalg, reduction, shape  # noqa: E402,F401
from dtorch.ops import conv, loss, nn, norm, rnn, spectral  # noqa: E402,F401
