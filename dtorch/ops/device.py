"""Moving a tensor between devices, differentiably: the gradient moves back."""

from dtorch import _backend
from dtorch.autograd.function import Op


class ToDevice(Op):
    attr_names = ("device",)

    def forward(self, x):
        self.source = str(_backend.device_of(x))
        return _backend.to_device(x, self.device)

    def backward(self, grad):
        if hasattr(grad, "grad_fn"):  # a Tensor, in a create_graph backward
            return (grad.to(self.source),)
        return (_backend.to_device(grad, self.source),)
