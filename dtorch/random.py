"""Random number generation: ``Generator``, the default generator, ``manual_seed`` and RNG state.

Each dtorch ``Generator`` owns a NumPy ``Generator`` on the PCG64 bit generator. A seed gives the same numbers on
every run and platform; they are not PyTorch's numbers (a different algorithm), which the tests never assume.
Random tensors for CUDA devices are drawn on the host and moved, so a seed reproduces them across devices too.
Like PyTorch, the default generator starts from a fixed seed, so an unseeded script is reproducible.

The state (``get_state``) is a uint8 tensor: 16 bytes of PCG64 state, 16 of increment, 1 + 4 of its cached
32-bit half, 8 of the initial seed.
"""

import numpy as np

from dtorch._backend import as_device, uint8
from dtorch.tensor import Tensor

DEFAULT_SEED = 67280421310721


class Generator:
    """A source of random numbers with its own state.

    >>> import dtorch
    >>> g = dtorch.Generator().manual_seed(0)
    >>> a = dtorch.rand(2, generator=g)
    >>> _ = g.manual_seed(0)
    >>> bool((dtorch.rand(2, generator=g) == a).all())
    True
    """

    def __init__(self, device="cpu"):
        self.device = as_device(device)
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed):
        """Reset to the state a seed gives; returns the generator. Seeds are 64-bit, as PyTorch's: any int from
        ``-2**63`` to ``2**64 - 1`` (a negative one wraps around), else a ValueError."""
        seed = int(seed)
        if not -(1 << 63) <= seed < 1 << 64:
            raise ValueError(f"Overflow when unpacking long long: seed {seed} is outside [-2**63, 2**64 - 1]")
        if seed < 0:
            seed &= 0xFFFF_FFFF_FFFF_FFFF
        self._initial_seed = seed
        self.numpy = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self):
        """Seed from the operating system's entropy; returns the new seed."""
        seed = int(np.random.SeedSequence().entropy) & 0xFFFF_FFFF_FFFF_FFFF
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        return self._initial_seed

    def get_state(self):
        """The state as a uint8 tensor (``set_state`` restores it)."""
        state = self.numpy.bit_generator.state
        payload = (
            state["state"]["state"].to_bytes(16, "little")
            + state["state"]["inc"].to_bytes(16, "little")
            + bytes([state["has_uint32"]])
            + int(state["uinteger"]).to_bytes(4, "little")
            + self._initial_seed.to_bytes(8, "little")
        )
        return Tensor._from_array(np.frombuffer(payload, dtype=np.uint8).copy(), None)

    def set_state(self, new_state):
        data = np.asarray(new_state._array if isinstance(new_state, Tensor) else new_state, dtype=np.uint8)
        if data.ndim != 1 or data.size != 45:
            raise RuntimeError(f"RNG state is wrong size: expected 45 bytes, got {data.size}")
        payload = data.tobytes()
        bit_generator = np.random.PCG64()
        bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {
                "state": int.from_bytes(payload[0:16], "little"),
                "inc": int.from_bytes(payload[16:32], "little"),
            },
            "has_uint32": payload[32],
            "uinteger": int.from_bytes(payload[33:37], "little"),
        }
        self.numpy = np.random.Generator(bit_generator)
        self._initial_seed = int.from_bytes(payload[37:45], "little")
        return self

    def __repr__(self):
        return f"<dtorch.Generator object at {hex(id(self))}>"


default_generator = Generator()


def numpy_generator(generator=None):
    """The ``numpy.random.Generator`` behind a dtorch generator (the default one when None).

    Library code (samplers, transforms, initialisers) draws through this so ``dtorch.manual_seed`` governs it.

    >>> import dtorch
    >>> _ = dtorch.manual_seed(3); a = numpy_generator().random()
    >>> _ = dtorch.manual_seed(3); a == numpy_generator().random()
    True
    """
    if generator is None:
        return default_generator.numpy
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a dtorch.Generator, got {type(generator).__name__}")
    return generator.numpy


def manual_seed(seed):
    """Seed the default generator; returns it.

    >>> import dtorch
    >>> _ = dtorch.manual_seed(0)
    >>> dtorch.initial_seed()
    0
    """
    return default_generator.manual_seed(seed)


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    """The default generator's state as a uint8 tensor."""
    return default_generator.get_state()


def set_rng_state(new_state):
    """Restore the default generator's state from ``get_rng_state()``."""
    default_generator.set_state(new_state)


_ = uint8  # the state tensor's dtype, documented above
