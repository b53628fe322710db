"""``dtorch.nn``: parameters, modules, layers, functional ops, initialisers and utilities."""

from dtorch.nn.parameter import Parameter  # noqa: F401
