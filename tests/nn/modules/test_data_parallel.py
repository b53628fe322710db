"""DataParallel without GPUs: it wraps the module as PyTorch's does (repr, state_dict keys, outputs)."""

import numpy as np
import torch

import dtorch
from dtorch import nn

_rng = np.random.default_rng(99)


def test_data_parallel_wraps_the_module_like_torch_without_gpus():
    torch_model = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    model = nn.DataParallel(nn.Linear(3, 2))
    assert repr(model) == repr(torch_model)
    assert list(model.state_dict()) == list(torch_model.state_dict())
    model.load_state_dict({k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in torch_model.state_dict().items()})
    x = _rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(model(dtorch.from_numpy(x)).detach().numpy(),
                               torch_model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert model.module is model._modules["module"]
