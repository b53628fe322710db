"""A small Transformer language model (causal self-attention) trained with DistributedDataParallel.

    dtorchrun --nproc-per-node 2 examples/train_transformer_lm.py --epochs 3
    python examples/train_transformer_lm.py --data path/to/wikitext-2

PyTorch's Transformer language-model tutorial shape: token embedding scaled by sqrt(d), sinusoidal positions,
``nn.TransformerEncoder`` with a causal mask, a linear decoder. Each rank trains on its own columns of the token
stream; validation loss is reduced over the ranks and printed as perplexity; rank 0 saves the model. Without
``--data`` a small corpus is generated (see ``lm_data.py``).
"""

import argparse
import math
import os
import tempfile
import time

import dtorch as torch
import dtorch.distributed as dist
from dtorch import nn
from dtorch.nn import functional as F
from dtorch.nn.parallel import DistributedDataParallel as DDP

from lm_data import Corpus, batchify, get_batch, shard, toy_corpus

# dtorchrun and torchrun set WORLD_SIZE; MPICH (mpiexec, srun) PMI_SIZE; Open MPI and MVAPICH their own
LAUNCHER_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal position code of "Attention Is All You Need" (a buffer, not learnt)."""

    def __init__(self, d_model, dropout, max_len=512):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return self.dropout(x + self.pe[:x.size(0)])


class TransformerLM(nn.Module):
    def __init__(self, vocab, d_model, heads, hidden, layers, dropout):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab, d_model)
        self.pos_encoder = PositionalEncoding(d_model, dropout)
        layer = nn.TransformerEncoderLayer(d_model, heads, hidden, dropout)
        self.encoder = nn.TransformerEncoder(layer, layers)
        self.decoder = nn.Linear(d_model, vocab)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, tokens):
        """``tokens`` (sequence, batch) -> logits (sequence * batch, vocab); position t sees positions <= t."""
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.size(0))
        x = self.pos_encoder(self.embedding(tokens) * math.sqrt(self.d_model))
        out = self.decoder(self.encoder(x, mask=mask, is_causal=True))
        return out.view(-1, out.size(-1))


def setup():
    if any(int(os.environ.get(name, "1")) > 1 for name in LAUNCHER_SIZE_VARIABLES):
        dist.init_process_group("gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def mean_over_ranks(total, count, world):
    t = torch.tensor([total, count], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(t)
    return (t[0] / t[1]).item()


def evaluate(model, data, bptt, world):
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, bptt):
            inputs, targets = get_batch(data, i, bptt)
            total += F.cross_entropy(model(inputs), targets, reduction="sum").item()
            count += targets.numel()
    return mean_over_ranks(total, count, world)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder with train/valid/test text (default: generated)")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=128, help="feed-forward width")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="columns per rank")
    parser.add_argument("--bptt", type=int, default=24)
    parser.add_argument("--max-batches", type=int, default=None, help="stop each epoch after this many chunks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=os.path.join(tempfile.gettempdir(), "dtorch_transformer_lm.pt"))
    args = parser.parse_args()

    rank, world = setup()
    torch.manual_seed(args.seed)
    folder = args.data or toy_corpus(os.path.join(tempfile.gettempdir(), "dtorch_toy_corpus"))
    corpus = Corpus(folder)
    train = shard(batchify(corpus.train, args.batch_size * world), rank, world)
    valid = shard(batchify(corpus.valid, 4 * world), rank, world)
    vocab = len(corpus.dictionary)

    module = TransformerLM(vocab, args.d_model, args.heads, args.hidden, args.layers, args.dropout)
    model = DDP(module) if world > 1 else module
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    steps = args.epochs * ((train.size(0) - 2) // args.bptt + 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=max(steps, 1))
    if rank == 0:
        print(f"{world} rank(s); vocabulary {vocab} words; {corpus.train.numel()} training tokens; "
              f"{sum(p.numel() for p in module.parameters())} parameters")
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        total = count = 0.0
        for batch, i in enumerate(range(0, train.size(0) - 1, args.bptt)):
            if args.max_batches is not None and batch >= args.max_batches:
                break
            inputs, targets = get_batch(train, i, args.bptt)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), targets)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
            if scheduler.last_epoch + 1 < steps:
                scheduler.step()
            total += loss.item() * targets.numel()
            count += targets.numel()
        train_loss = mean_over_ranks(total, count, world)
        valid_loss = evaluate(model, valid, args.bptt, world)
        if rank == 0:
            print(f"epoch {epoch}  train ppl {math.exp(train_loss):8.2f}  valid ppl {math.exp(valid_loss):8.2f}  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    if rank == 0:
        torch.save(module.state_dict(), args.save)
        print(f"final valid perplexity {math.exp(valid_loss):.2f}; model saved to {args.save}")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
