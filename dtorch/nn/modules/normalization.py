"""Normalisation layers: ``BatchNorm1d/2d/3d``, ``LayerNorm``, ``GroupNorm``, ``InstanceNorm1d/2d/3d``,
``LocalResponseNorm``, ``RMSNorm`` and ``SyncBatchNorm`` (batch statistics all-reduced over a process group).

BatchNorm keeps PyTorch's buffers (``running_mean``, ``running_var``, ``num_batches_tracked``) and update rule:
in training mode with ``track_running_stats`` each forward adds one to ``num_batches_tracked`` and blends the
batch statistics into the running ones with ``momentum`` (``momentum=None``: a cumulative average,
``1 / num_batches_tracked``); ``running_var`` takes the unbiased batch variance. In eval mode the running
statistics normalise (the batch ones when the module tracks none).
"""

import numbers
import warnings

import numpy as np

from dtorch import _backend
from dtorch._errors import not_a_tensor
from dtorch import distributed as dist
from dtorch import factories
from dtorch.autograd import Function, grad_mode
from dtorch.nn import functional as F
from dtorch.nn import init
from dtorch.nn.modules.module import Module
from dtorch.nn.parameter import Parameter
from dtorch.tensor import Tensor

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm", "InstanceNorm1d",
           "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm", "RMSNorm", "SyncBatchNorm"]


def _make_affine(module, shape, affine, bias, device, dtype):
    """Register ``weight`` (and ``bias`` unless ``bias=False``) of ``shape`` when ``affine``, else both as None."""
    if affine:
        module.weight = Parameter(factories.empty(shape, device=device, dtype=dtype))
        if bias:
            module.bias = Parameter(factories.empty(shape, device=device, dtype=dtype))
            return
    else:
        module.register_parameter("weight", None)
    module.register_parameter("bias", None)


def _reset_affine(module):
    """Weight ones, bias zeros (PyTorch's initialisation for every normalisation layer)."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    _version = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _make_affine(self, num_features, affine, bias, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", factories.zeros(num_features, device=device, dtype=dtype))
            self.register_buffer("running_var", factories.ones(num_features, device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked", factories.tensor(0, dtype=_backend.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        """Zero ``running_mean`` and ``num_batches_tracked``, fill ``running_var`` with ones."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input):
        raise NotImplementedError

    def forward(self, input):
        try:
            self._check_input_dim(input)
        except AttributeError as error:  # a NumPy array, say: PyTorch's TypeError, not ``ndarray has no dim``
            not_a_tensor(error, "batch_norm", "input", input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            counter = self.num_batches_tracked
            counter._array += 1  # a counter outside autograd, like PyTorch's in-place add_
            counter._bump_version()
            factor = 1.0 / float(counter.item()) if self.momentum is None else self.momentum
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        give_buffers = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if give_buffers else None,
            self.running_var if give_buffers else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats:
            # checkpoints from before num_batches_tracked existed: start the count at the current value
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                state_dict[key] = (
                    self.num_batches_tracked if self.num_batches_tracked is not None
                    else factories.tensor(0, dtype=_backend.int64)
                )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)`` input, per channel ``C``.

    >>> import dtorch
    >>> bn = dtorch.nn.BatchNorm1d(100)
    >>> bn
    BatchNorm1d(100, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> bn(dtorch.randn(20, 100)).shape
    dtorch.Size([20, 100])
    """

    def _check_input_dim(self, input):
        if input.dim() != 2 and input.dim() != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)`` input, per channel ``C``.

    >>> import dtorch
    >>> dtorch.nn.BatchNorm2d(3, momentum=None)(dtorch.randn(4, 3, 5, 5)).shape
    dtorch.Size([4, 3, 5, 5])
    """

    def _check_input_dim(self, input):
        if input.dim() != 4:
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale by ``weight`` and add ``bias``.

    >>> import dtorch
    >>> ln = dtorch.nn.LayerNorm(10)
    >>> ln
    LayerNorm((10,), eps=1e-05, elementwise_affine=True, bias=True)
    >>> ln(dtorch.randn(20, 5, 10)).shape
    dtorch.Size([20, 5, 10])
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _make_affine(self, self.normalized_shape, elementwise_affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Normalise ``(N, C, *)`` input over groups of ``C / num_groups`` channels, then a per-channel affine.

    >>> import dtorch
    >>> dtorch.nn.GroupNorm(3, 6)(dtorch.randn(20, 6, 10, 10)).shape
    dtorch.Size([20, 6, 10, 10])
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _make_affine(self, num_channels, affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over ``(N, C, D, H, W)`` input, per channel ``C``.

    >>> import dtorch
    >>> dtorch.nn.BatchNorm3d(3)(dtorch.randn(2, 3, 2, 4, 4)).shape
    dtorch.Size([2, 3, 2, 4, 4])
    """

    def _check_input_dim(self, input):
        if input.dim() != 5:
            raise ValueError(f"expected 5D input (got {input.dim()}D input)")


class _InstanceNorm(_BatchNorm):
    """Per-sample, per-channel normalisation; PyTorch's defaults: no affine parameters, no running statistics.

    With ``track_running_stats`` the running statistics are updated in training and normalise in eval mode.
    An unbatched input (no ``N``) is handled as a batch of one.
    """

    _batched_dim = 3

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def _check_input_dim(self, input):
        if input.dim() not in (self._batched_dim - 1, self._batched_dim):
            raise ValueError(
                f"expected {self._batched_dim - 1}D or {self._batched_dim}D input (got {input.dim()}D input)"
            )

    def forward(self, input):
        self._check_input_dim(input)
        feature_dim = input.dim() - (self._batched_dim - 1)
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"expected input's size at dim={feature_dim} to match num_features ({self.num_features}), but "
                    f"got: {input.shape[feature_dim]}."
                )
            warnings.warn(
                f"input's size at dim={feature_dim} does not match num_features. You can silence this warning by "
                "not passing in num_features, which is not used because affine=False",
                stacklevel=2,
            )
        unbatched = input.dim() == self._batched_dim - 1
        if unbatched:
            input = input.unsqueeze(0)
        out = F.instance_norm(
            input, self.running_mean, self.running_var, self.weight, self.bias,
            self.training or not self.track_running_stats, self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of ``(N, C, L)`` or ``(C, L)`` input.

    >>> import dtorch
    >>> dtorch.nn.InstanceNorm1d(3)
    InstanceNorm1d(3, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)
    """

    _batched_dim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of ``(N, C, H, W)`` or ``(C, H, W)`` input.

    >>> import dtorch
    >>> dtorch.nn.InstanceNorm2d(3, affine=True)(dtorch.randn(2, 3, 4, 4)).shape
    dtorch.Size([2, 3, 4, 4])
    """

    _batched_dim = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input.

    >>> import dtorch
    >>> dtorch.nn.InstanceNorm3d(2)(dtorch.randn(1, 2, 2, 3, 3)).shape
    dtorch.Size([1, 2, 2, 3, 3])
    """

    _batched_dim = 5


class LocalResponseNorm(Module):
    """Normalise each element by the squares of its neighbours across channels (``F.local_response_norm``).

    >>> import dtorch
    >>> dtorch.nn.LocalResponseNorm(2)
    LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class RMSNorm(Module):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the trailing ``normalized_shape`` axes.

    ``eps=None`` uses the input dtype's machine epsilon, as PyTorch does.

    >>> import dtorch
    >>> dtorch.nn.RMSNorm(4)
    RMSNorm((4,), eps=None, elementwise_affine=True)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(factories.empty(self.normalized_shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class _SyncBatchNormFunction(Function):
    """Normalise with statistics already reduced over the group; backward all-reduces the two per-channel sums
    that the input gradient needs (the parameter gradients stay local: DDP reduces those)."""

    @staticmethod
    def forward(ctx, input, weight, bias, mean, invstd, count, group):
        x = input._array
        shape = (1, -1) + (1,) * (x.ndim - 2)
        xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
        out = xhat
        if weight is not None:
            out = out * weight._array.reshape(shape)
        if bias is not None:
            out = out + bias._array.reshape(shape)
        ctx.xhat, ctx.invstd, ctx.count, ctx.group = xhat, invstd, count, group
        ctx.weight = None if weight is None else weight._array
        ctx.has_bias = bias is not None
        return Tensor._from_array(out.astype(x.dtype, copy=False), None)

    @staticmethod
    def backward(ctx, grad):
        g = grad._array
        xhat = ctx.xhat
        axes = (0,) + tuple(range(2, g.ndim))
        shape = (1, -1) + (1,) * (g.ndim - 2)
        sum_dy = g.sum(axes, dtype=np.float64)
        sum_dy_xhat = (g * xhat).sum(axes, dtype=np.float64)
        sums = Tensor._from_array(_backend.xp_of(g).concatenate([sum_dy, sum_dy_xhat]), None)
        dist.all_reduce(sums, group=ctx.group)
        c = sum_dy.shape[0]
        mean_dy = sums._array[:c] / ctx.count
        mean_dy_xhat = sums._array[c:] / ctx.count
        scale = ctx.invstd if ctx.weight is None else ctx.invstd * ctx.weight
        grad_input = (scale.reshape(shape) * (g - mean_dy.reshape(shape) - xhat * mean_dy_xhat.reshape(shape)))
        wrap = Tensor._from_array
        grad_weight = None if ctx.weight is None else wrap(sum_dy_xhat.astype(g.dtype), None)
        grad_bias = wrap(sum_dy.astype(g.dtype), None) if ctx.has_bias else None
        return wrap(grad_input.astype(g.dtype), None), grad_weight, grad_bias, None, None, None, None


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation whose batch statistics cover the whole process group (every rank's batch).

    In training with an initialised process group of more than one rank, the per-channel sums are all-reduced
    (``process_group``, the world by default) in forward and the input-gradient sums in backward; otherwise it is
    ``BatchNorm``. ``convert_sync_batchnorm`` swaps a model's BatchNorm layers for it.

    >>> import dtorch
    >>> model = dtorch.nn.SyncBatchNorm.convert_sync_batchnorm(dtorch.nn.Sequential(dtorch.nn.BatchNorm2d(3)))
    >>> model
    Sequential(
      (0): SyncBatchNorm(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    )
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def _sync_group(self):
        """The group to reduce over, or None when there is nothing to synchronise."""
        if not (self.training and dist.is_initialized()):
            return None
        group = self.process_group if self.process_group is not None else dist.group.WORLD
        return group if dist.get_world_size(group) > 1 else None

    def forward(self, input):
        self._check_input_dim(input)
        if input.shape[1] == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")
        group = self._sync_group()
        if group is None:
            return super().forward(input)
        return self._synchronised(input, group)

    def _synchronised(self, input, group):
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked._array += 1
            self.num_batches_tracked._bump_version()
            factor = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
        x = input._array
        xp = _backend.xp_of(x)
        axes = (0,) + tuple(range(2, x.ndim))
        local_count = x.size // x.shape[1]
        stats = xp.concatenate([x.sum(axes, dtype=np.float64), (x.astype(np.float64) ** 2).sum(axes),
                                xp.asarray([float(local_count)])])
        stats = Tensor._from_array(stats, None)
        with grad_mode.no_grad():
            dist.all_reduce(stats, group=group)
        c = x.shape[1]
        count = float(stats._array[-1])
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(x.shape)}")
        mean = stats._array[:c] / count
        var = xp.maximum(stats._array[c:2 * c] / count - mean * mean, 0.0)
        invstd = 1.0 / xp.sqrt(var + self.eps)
        if self.track_running_stats and self.running_mean is not None:
            for buffer, value in ((self.running_mean, mean), (self.running_var, var * count / (count - 1))):
                buffer._array *= 1 - factor
                buffer._array += (factor * value).astype(buffer._array.dtype)
                buffer._bump_version()
        return _SyncBatchNormFunction.apply(input, self.weight, self.bias, mean.astype(x.dtype),
                                            invstd.astype(x.dtype), count, group)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every ``BatchNorm*d`` replaced by a ``SyncBatchNorm`` sharing its parameters and
        buffers (a BatchNorm given directly comes back as a new SyncBatchNorm)."""
        output = module
        if isinstance(module, _BatchNorm) and not isinstance(module, _InstanceNorm):
            output = cls(module.num_features, module.eps, module.momentum, module.affine,
                         module.track_running_stats, process_group, bias=module.bias is not None)
            if module.affine:
                output.weight = module.weight
                output.bias = module.bias
            output.running_mean = module.running_mean
            output.running_var = module.running_var
            output.num_batches_tracked = module.num_batches_tracked
            output.training = module.training
        for name, child in module.named_children():
            output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return output
