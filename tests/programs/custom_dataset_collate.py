"""Follows the PyTorch tutorial "Writing Custom Datasets, DataLoaders and Transforms" and the usual variable-length
batching answer: a `Dataset` subclass with `__len__`/`__getitem__` returning dicts, a transform class with
`__call__`, a `collate_fn` that pads with `pad_sequence` and returns lengths, `DataLoader(..., num_workers=2,
worker_init_fn=..., generator=torch.Generator().manual_seed(0), drop_last=True)`, `random_split` with a seeded
generator, and `torch.utils.data.get_worker_info()` inside the dataset."""
import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, get_worker_info, random_split


class ScaleBy:
    def __init__(self, factor):
        self.factor = factor

    def __call__(self, sample):
        return {"sequence": sample["sequence"] * self.factor, "label": sample["label"]}


class SequenceDataset(Dataset):
    def __init__(self, n, transform=None):
        rng = np.random.default_rng(0)
        self.items = [rng.standard_normal(rng.integers(2, 8)).astype(np.float32) for _ in range(n)]
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        if torch.is_tensor(idx):
            idx = idx.tolist()
        info = get_worker_info()
        sample = {"sequence": torch.from_numpy(self.items[idx]), "label": int(self.items[idx].sum() > 0),
                  "worker": -1 if info is None else info.id}
        if self.transform:
            sample = dict(self.transform(sample), worker=sample["worker"])
        return sample


def collate(batch):
    sequences = [item["sequence"] for item in batch]
    return {"padded": pad_sequence(sequences, batch_first=True), "lengths": torch.tensor([len(s) for s in sequences]),
            "labels": torch.tensor([item["label"] for item in batch]), "workers": [item["worker"] for item in batch]}


def seed_worker(worker_id):
    np.random.seed(torch.initial_seed() % 2 ** 32)


if __name__ == "__main__":
    dataset = SequenceDataset(50, transform=ScaleBy(2.0))
    train_set, val_set = random_split(dataset, [40, 10], generator=torch.Generator().manual_seed(42))
    loader = DataLoader(train_set, batch_size=8, shuffle=True, num_workers=2, worker_init_fn=seed_worker,
                        generator=torch.Generator().manual_seed(0), drop_last=True, collate_fn=collate)
    batches = list(loader)
    model = torch.nn.GRU(1, 8, batch_first=True)
    head = torch.nn.Linear(8, 2)
    optimizer = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=1e-2)
    losses = []
    for epoch in range(15):
        total = 0.0
        for batch in batches:
            packed = torch.nn.utils.rnn.pack_padded_sequence(batch["padded"].unsqueeze(-1), batch["lengths"],
                                                             batch_first=True, enforce_sorted=False)
            _, hidden = model(packed)
            loss = torch.nn.functional.cross_entropy(head(hidden[-1]), batch["labels"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(batches))
    RESULT = {"losses": losses, "exact": {"batches": len(batches), "sizes": [len(train_set), len(val_set)],
                                          "workers_used": sorted(set(w for b in batches for w in b["workers"])),
                                          "first_len": int(batches[0]["padded"].shape[0])}}
