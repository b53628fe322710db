"""Optimizers and learning-rate schedulers, PyTorch's ``torch.optim``.

Each optimizer keeps PyTorch's constructor, ``param_groups``, ``state`` and ``state_dict`` layout, and does its
math in one update function on raw arrays (``sgd_update``, ``adam_update``, ``rmsprop_update``, ...), run per
parameter or once over flat buffers (see ``dtorch.optim.optimizer``). ``LBFGS`` works on one flat vector of all
parameters with a closure; ``SparseAdam`` takes dense gradients (see ``dtorch.optim.sparse_adam``).
"""

from dtorch.optim import lr_scheduler
from dtorch.optim.adadelta import Adadelta, adadelta_update
from dtorch.optim.adagrad import Adagrad, adagrad_update
from dtorch.optim.adam import Adam, AdamW, adam_update
from dtorch.optim.adamax import Adamax, adamax_update
from dtorch.optim.asgd import ASGD, asgd_update
from dtorch.optim.lbfgs import LBFGS
from dtorch.optim.nadam import NAdam, nadam_update
from dtorch.optim.optimizer import Optimizer
from dtorch.optim.radam import RAdam, radam_update
from dtorch.optim.rmsprop import RMSprop, rmsprop_update
from dtorch.optim.rprop import Rprop, rprop_update
from dtorch.optim.sgd import SGD, sgd_update
from dtorch.optim.sparse_adam import SparseAdam, sparse_adam_update

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD",
    "Rprop", "SparseAdam", "LBFGS", "lr_scheduler",
    "sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "adadelta_update", "adamax_update",
    "nadam_update", "radam_update", "asgd_update", "rprop_update", "sparse_adam_update",
]
