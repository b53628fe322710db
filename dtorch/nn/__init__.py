"""``dtorch.nn``: parameters, modules, layers, functional ops, initialisers and utilities.

>>> import dtorch
>>> from dtorch import nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
>>> model(dtorch.randn(3, 4)).shape
dtorch.Size([3, 2])
"""

from dtorch.nn.parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter  # noqa: F401
from dtorch.nn import functional  # noqa: F401
from dtorch.nn import init  # noqa: F401
from dtorch.nn.modules import *  # noqa: F401,F403
from dtorch.nn.modules import __all__ as _module_names
from dtorch.nn.modules.module import Module  # noqa: F401
from dtorch.nn import modules  # noqa: F401

from dtorch.nn import utils  # noqa: F401
from dtorch.nn import parallel  # noqa: F401

__all__ = ["Buffer", "Parameter", "UninitializedBuffer", "UninitializedParameter", "functional", "init", "modules",
           "parallel", "utils"] + list(_module_names)
