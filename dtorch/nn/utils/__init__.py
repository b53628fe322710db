"""``dtorch.nn.utils``: gradient clipping, parameter/vector conversion and variable-length sequences (``rnn``)."""

from dtorch.nn.utils.clip_grad import (  # noqa: F401
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from dtorch.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from dtorch.nn.utils import rnn  # noqa: F401

__all__ = [
    "clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
    "parameters_to_vector", "vector_to_parameters", "rnn",
]
