"""Word-level text for the language-model examples: a corpus read from text files, or a small one made up here.

``Corpus(path)`` reads ``train.txt``, ``valid.txt`` and ``test.txt`` (WikiText-2's ``wiki.*.tokens`` names work
too) from a folder, one sentence a line, and numbers the words. Without a folder, :func:`toy_corpus` writes
sentences from a small seeded grammar, so the examples run anywhere and have something to learn (the grammar's
word order is predictable, so perplexity falls far below the vocabulary size).

``batchify`` lays the token stream out in columns, and ``shard`` gives each rank its own columns, so the ranks of
a DDP job train on different text with the same shapes.
"""

import os
import random

import dtorch as torch

_SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the teacher", "a bird", "the children", "our team"]
_VERBS = ["sees", "likes", "finds", "follows", "watches", "helps", "calls", "meets"]
_OBJECTS = ["the ball", "a red car", "the garden", "a small house", "the river", "the new book", "a green tree"]
_PLACES = ["in the park", "at home", "near the school", "by the sea", "after dinner", "every morning"]


def toy_corpus(folder, sentences=(4000, 400, 400), seed=0):
    """Write ``train.txt``/``valid.txt``/``test.txt`` of grammar sentences into ``folder``; returns ``folder``."""
    rng = random.Random(seed)
    os.makedirs(folder, exist_ok=True)
    for name, count in zip(("train", "valid", "test"), sentences):
        path = os.path.join(folder, f"{name}.txt")
        partial = f"{path}.{os.getpid()}.tmp"  # several ranks may write it at once: each renames a whole file
        with open(partial, "w") as f:
            for _ in range(count):
                words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
                if rng.random() < 0.5:
                    words.append(rng.choice(_PLACES))
                if rng.random() < 0.3:
                    words += ["and", rng.choice(_VERBS), rng.choice(_OBJECTS)]
                f.write(" ".join(words) + " .\n")
        os.replace(partial, path)
    return folder


class Dictionary:
    """Words to ids and back."""

    def __init__(self):
        self.word2idx, self.idx2word = {}, []

    def add_word(self, word):
        if word not in self.word2idx:
            self.word2idx[word] = len(self.idx2word)
            self.idx2word.append(word)
        return self.word2idx[word]

    def __len__(self):
        return len(self.idx2word)


class Corpus:
    """The three splits of a folder as 1-D LongTensors of word ids (``<eos>`` ends each line)."""

    def __init__(self, path):
        self.dictionary = Dictionary()
        self.train = self.tokenize(self._file(path, "train"))
        self.valid = self.tokenize(self._file(path, "valid"))
        self.test = self.tokenize(self._file(path, "test"))

    @staticmethod
    def _file(path, split):
        for name in (f"{split}.txt", f"wiki.{split}.tokens"):
            if os.path.exists(os.path.join(path, name)):
                return os.path.join(path, name)
        raise FileNotFoundError(f"no {split}.txt (or wiki.{split}.tokens) in {path}")

    def tokenize(self, path):
        ids = []
        with open(path, encoding="utf8") as f:
            for line in f:
                ids.extend(self.dictionary.add_word(word) for word in line.split() + ["<eos>"])
        return torch.tensor(ids, dtype=torch.int64)


def batchify(data, columns):
    """``data`` (N,) as (N // columns, columns): each column a contiguous stretch of text."""
    rows = data.size(0) // columns
    return data[:rows * columns].view(columns, rows).t().contiguous()


def shard(data, rank, world):
    """This rank's columns of a batchified stream (every rank gets as many)."""
    per_rank = data.size(1) // world
    return data[:, rank * per_rank:(rank + 1) * per_rank].contiguous()


def get_batch(source, i, bptt):
    """Inputs ``source[i:i+n]`` and targets one word later, flattened (n = ``bptt`` or what is left)."""
    n = min(bptt, source.size(0) - 1 - i)
    return source[i:i + n], source[i + 1:i + 1 + n].reshape(-1)
