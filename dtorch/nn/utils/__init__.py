"""``dtorch.nn.utils``: gradient clipping, parameter/vector conversion, variable-length sequences (``rnn``),
parametrizations (``parametrize``, ``parametrizations``) and the older hook-based ``weight_norm``/``spectral_norm``."""

from dtorch.nn.utils.clip_grad import (  # noqa: F401
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from dtorch.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from dtorch.nn.utils import rnn  # noqa: F401
from dtorch.nn.utils import parametrizations, parametrize  # noqa: F401
from dtorch.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm  # noqa: F401
from dtorch.nn.utils.weight_norm import remove_weight_norm, weight_norm  # noqa: F401

__all__ = [
    "clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
    "parameters_to_vector", "vector_to_parameters", "rnn", "parametrize", "parametrizations", "weight_norm",
    "remove_weight_norm", "spectral_norm", "remove_spectral_norm",
]
