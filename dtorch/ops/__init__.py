"""Every differentiable operation of dtorch, one ``Function`` each, grouped by kind.

The public front ends (``dtorch.add``, ``Tensor.__add__``, ``nn.functional.relu``) live in ``dtorch.functional``
and ``dtorch.nn.functional``; they resolve arguments to plain data and call ``Op.apply``.
"""

from dtorch.ops import device, elementwise, indexing, linalg, reduction, shape  # noqa: F401
from dtorch.ops import conv, loss, nn, norm, rnn  # noqa: F401
