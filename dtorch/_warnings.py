"""``warn``: a warning attributed to the user's line, however deep inside dtorch it is raised.

A fixed ``stacklevel`` is right for one call path only (``F.mse_loss`` called directly, or from
``nn.MSELoss.forward`` through ``Module.__call__``, differ by two frames). ``warn`` counts the frames that belong
to the dtorch package and points past them, as PyTorch's C++ warnings point at the Python line that called in.
"""

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message, category=UserWarning):
    """``warnings.warn`` with the stack level of the first caller outside dtorch.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("careful")
    >>> caught[0].filename.startswith(_PACKAGE)
    False
    """
    frame = sys._getframe(1)  # the caller: stack level 2 for warnings.warn called here
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
