"""Follows the tensor idioms of forum answers and cheat sheets ("PyTorch Cheat Sheet", top Stack Overflow
answers): one-hot with `F.one_hot` and with `scatter_`, `torch.where`, `masked_select`, `nonzero(as_tuple=True)`,
`topk`/`argsort`/`sort(descending=True)`, `gather` along a dim, `chunk`/`split`, `repeat` vs `expand`, `cumsum`,
`clamp`, `bincount`, `unique(return_counts=True)`, `torch.stack` vs `torch.cat`, `permute`/`contiguous`/`view`,
`index_select`, `torch.allclose`, `torch.equal`, in-place `add_`/`mul_` and `numpy()` round trips."""
import numpy as np
import torch
import torch.nn.functional as F

labels = torch.tensor([0, 2, 1, 2])
one_hot = F.one_hot(labels, num_classes=3)
scattered = torch.zeros(4, 3).scatter_(1, labels.unsqueeze(1), 1.0)
x = torch.arange(12, dtype=torch.float32).view(3, 4)
results = {
    "one_hot": one_hot.tolist(), "scattered": scattered.tolist(),
    "where": torch.where(x > 5, x, torch.zeros_like(x)).tolist(),
    "masked_select": torch.masked_select(x, x % 3 == 0).tolist(),
    "nonzero": [t.tolist() for t in (x > 8).nonzero(as_tuple=True)],
    "topk": [t.tolist() for t in torch.tensor([3.0, 1.0, 4.0, 1.5, 9.0]).topk(2)],
    "argsort": torch.tensor([3.0, 1.0, 4.0]).argsort(descending=True).tolist(),
    "sort": torch.sort(torch.tensor([[3, 1, 2], [0, 5, 4]]), dim=1, descending=True)[0].tolist(),
    "gather": x.gather(1, torch.tensor([[0, 3], [1, 1], [2, 0]])).tolist(),
    "chunk": [c.shape[1] for c in x.chunk(3, dim=1)],
    "split": [s.tolist() for s in torch.arange(7).split([3, 4])],
    "repeat": torch.tensor([1, 2]).repeat(2, 2).tolist(),
    "expand": torch.tensor([[1], [2]]).expand(2, 3).tolist(),
    "cumsum": x.cumsum(dim=1)[1].tolist(),
    "clamp": x.clamp(min=2, max=9)[0].tolist(),
    "bincount": torch.tensor([0, 1, 1, 3]).bincount().tolist(),
    "unique": [t.tolist() for t in torch.tensor([3, 1, 3, 2, 1, 3]).unique(return_counts=True)],
    "stack": list(torch.stack([x, x]).shape), "cat": list(torch.cat([x, x]).shape),
    "permute": x.view(3, 2, 2).permute(2, 0, 1).contiguous().view(-1).tolist(),
    "index_select": x.index_select(0, torch.tensor([2, 0])).tolist(),
    "allclose": torch.allclose(x, x + 1e-9), "equal": torch.equal(x, x.clone()),
    "max_dim": [t.tolist() for t in x.max(dim=0)], "mean_keepdim": list(x.mean(dim=1, keepdim=True).shape),
    "argmax": x.argmax().item(), "norm": x.norm().item(), "std": x.std(dim=0).tolist(),
    "flip": x.flip(0)[0].tolist(), "roll": torch.roll(torch.arange(5), 2).tolist(),
    "tril": torch.ones(3, 3).tril().tolist(), "outer": torch.outer(torch.arange(2.0), torch.arange(3.0)).tolist(),
}
y = torch.ones(2, 2)
y.add_(1).mul_(3)
array = y.numpy()
array[0, 0] = -1.0  # shares memory with y
z = torch.from_numpy(np.arange(4, dtype=np.int32))
dtypes = {"one_hot": str(one_hot.dtype), "mean_int_promote": str((z / 2).dtype), "z": str(z.dtype),
          "sum_int": str(z.sum().dtype), "float_int": str((x * 2).dtype), "bool_sum": str((x > 1).sum().dtype)}
RESULT = {"values": results, "exact": {"shared": y[0, 0].item()},
          "dtypes": {k: v.split(".")[-1] for k, v in dtypes.items()}}
