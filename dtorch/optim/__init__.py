"""Optimizers and learning-rate schedulers, PyTorch's ``torch.optim``.

Each optimizer keeps PyTorch's constructor, ``param_groups``, ``state`` and ``state_dict`` layout, and does its
math in one update function on raw arrays (``sgd_update``, ``adam_update``, ``rmsprop_update``,
``adagrad_update``), run per parameter or once over flat buffers (see ``dtorch.optim.optimizer``).
"""

from dtorch.optim import lr_scheduler
from dtorch.optim.adagrad import Adagrad, adagrad_update
from dtorch.optim.adam import Adam, AdamW, adam_update
from dtorch.optim.optimizer import Optimizer
from dtorch.optim.rmsprop import RMSprop, rmsprop_update
from dtorch.optim.sgd import SGD, sgd_update

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler",
    "sgd_update", "adam_update", "rmsprop_update", "adagrad_update",
]
