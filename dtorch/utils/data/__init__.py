"""``dtorch.utils.data``: PyTorch's ``torch.utils.data`` on dtorch, plus sharded ``.npy`` datasets.

>>> from dtorch.utils.data import DataLoader, TensorDataset
"""
from dtorch.utils.data._collate import default_collate, default_convert
from dtorch.utils.data._worker import WorkerInfo, get_worker_info
from dtorch.utils.data.dataloader import DataLoader
from dtorch.utils.data.dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset,
                                       TensorDataset, random_split)
from dtorch.utils.data.distributed import DistributedSampler
from dtorch.utils.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
                                       WeightedRandomSampler)
from dtorch.utils.data.sharded import ShardedDataset, ShardWriter, write_shards

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
    "IterableDataset", "RandomSampler", "Sampler", "SequentialSampler", "ShardWriter", "ShardedDataset",
    "StackDataset", "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "WorkerInfo",
    "default_collate", "default_convert", "get_worker_info", "random_split", "write_shards",
]
