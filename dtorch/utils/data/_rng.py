"""Where the data pipeline's random draws come from.

Every random choice in ``dtorch.utils.data`` and ``dtorch.vision`` (random samplers, ``random_split``, random
transforms, worker seeds) is drawn from dtorch's RNG, so ``dtorch.manual_seed`` or an explicit
``dtorch.Generator`` reproduces it. This module is the one place that reaches for that RNG.
"""
import numpy as np

from dtorch import random as dtorch_random


def numpy_generator(generator=None):
    """The ``numpy.random.Generator`` behind ``generator`` (a ``dtorch.Generator``) or behind dtorch's default
    generator when ``generator`` is None. Draws from it advance the dtorch generator's state."""
    return dtorch_random.numpy_generator(generator)


def draw_seed(generator=None):
    """One fresh 63-bit seed from ``generator`` (or dtorch's default generator), as PyTorch draws a loader's
    base seed with ``torch.empty((), dtype=torch.int64).random_(generator=...)``."""
    return int(numpy_generator(generator).integers(0, 2**63 - 1, dtype=np.int64))


def seeded_numpy_generator(seed):
    """The NumPy generator of a fresh ``dtorch.Generator`` seeded with ``seed``: the same stream on every rank and
    in every process, untouched by the default generator's state."""
    generator = dtorch_random.Generator()
    generator.manual_seed(seed)
    return numpy_generator(generator)
