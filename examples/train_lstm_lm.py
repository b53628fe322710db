"""A word-level LSTM language model trained with DistributedDataParallel (PyTorch's word_language_model shape).

    dtorchrun --nproc-per-node 2 examples/train_lstm_lm.py --epochs 3
    python examples/train_lstm_lm.py --data path/to/wikitext-2       # one process, your own text

Each rank trains on its own columns of the token stream (truncated backpropagation through time, the hidden state
carried over between chunks and detached); validation loss is reduced over the ranks and printed as perplexity;
rank 0 keeps the best model. Without ``--data`` a small corpus is generated (see ``lm_data.py``).
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


class LSTMModel(nn.Module):
    """Embedding, a stacked LSTM, and a decoder whose weight is the embedding's (tied)."""

    def __init__(self, vocab, size, layers, dropout):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab, size)
        self.rnn = nn.LSTM(size, size, layers, dropout=dropout)
        self.decoder = nn.Linear(size, vocab)
        self.decoder.weight = self.encoder.weight
        self.layers, self.size = layers, size
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, tokens, hidden):
        output, hidden = self.rnn(self.drop(self.encoder(tokens)), hidden)
        return self.decoder(self.drop(output)).view(-1, self.decoder.out_features), hidden

    def init_hidden(self, batch):
        return (torch.zeros(self.layers, batch, self.size), torch.zeros(self.layers, batch, self.size))


def detach(hidden):
    """Cut the graph between chunks, keep the values (truncated BPTT)."""
    return tuple(h.detach() for h in hidden)


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


def evaluate(model, module, data, args, world):
    model.eval()
    hidden = module.init_hidden(data.size(1))
    total = count = 0.0
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, args.bptt):
            inputs, targets = get_batch(data, i, args.bptt)
            output, hidden = module(inputs, hidden)
            total += F.cross_entropy(output, targets, reduction="sum").item()
            count += targets.numel()
    return mean_over_ranks(total, count, world)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder with train/valid/test text (default: generated)")
    parser.add_argument("--size", type=int, default=64, help="embedding and hidden size")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--clip", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="columns per rank")
    parser.add_argument("--bptt", type=int, default=20)
    parser.add_argument("--max-batches", type=int, default=None, help="stop each epoch after this many chunks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=os.path.join(tempfile.gettempdir(), "dtorch_lstm_lm.pt"))
    args = parser.parse_args()

    rank, world = setup()
    torch.manual_seed(args.seed)
    folder = args.data or toy_corpus(os.path.join(tempfile.gettempdir(), "dtorch_toy_corpus"))
    corpus = Corpus(folder)  # every rank reads the files, so every rank numbers the words alike
    train = shard(batchify(corpus.train, args.batch_size * world), rank, world)
    valid = shard(batchify(corpus.valid, 4 * world), rank, world)
    vocab = len(corpus.dictionary)

    module = LSTMModel(vocab, args.size, args.layers, args.dropout)
    model = DDP(module) if world > 1 else module
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    if rank == 0:
        print(f"{world} rank(s); vocabulary {vocab} words; {corpus.train.numel()} training tokens; "
              f"{sum(p.numel() for p in module.parameters())} parameters")
    best = math.inf
    for epoch in range(1, args.epochs + 1):
        model.train()
        start = time.perf_counter()
        hidden = module.init_hidden(args.batch_size)
        total = count = 0.0
        for batch, i in enumerate(range(0, train.size(0) - 1, args.bptt)):
            if args.max_batches is not None and batch >= args.max_batches:
                break
            inputs, targets = get_batch(train, i, args.bptt)
            hidden = detach(hidden)
            optimizer.zero_grad()
            output, hidden = model(inputs, hidden)
            loss = F.cross_entropy(output, targets)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            total += loss.item() * targets.numel()
            count += targets.numel()
        train_loss = mean_over_ranks(total, count, world)
        valid_loss = evaluate(model, module, valid, args, world)
        if rank == 0:
            print(f"epoch {epoch}  train ppl {math.exp(train_loss):8.2f}  valid ppl {math.exp(valid_loss):8.2f}  "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
            if valid_loss < best:
                torch.save(module.state_dict(), args.save)
        best = min(best, valid_loss)
    if rank == 0:
        print(f"best valid perplexity {math.exp(best):.2f}; model saved to {args.save}")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
