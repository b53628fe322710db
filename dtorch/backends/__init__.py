"""``dtorch.backends``: the switches scripts set for PyTorch's native backends (cuDNN, TF32 matmuls).

dtorch runs its ops through NumPy and CuPy, so none of these switches changes what dtorch computes; they exist so
that scripts setting them run, and they keep the values set. ``cudnn.deterministic`` needs nothing from dtorch:
its NumPy path is deterministic, and so is its CuPy path but for atomics in some CuPy reductions.

>>> import dtorch
>>> dtorch.backends.cudnn.benchmark = True
>>> dtorch.backends.cudnn.benchmark
True
"""

import types

cudnn = types.SimpleNamespace(enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
                              is_available=lambda: False, version=lambda: None)
cuda = types.SimpleNamespace(matmul=types.SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True),
                             is_built=lambda: False)
mps = types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
