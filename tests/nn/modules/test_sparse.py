"""Embedding and EmbeddingBag against PyTorch with the same weights; padding rows, ``from_pretrained``."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from helpers import check_module, module_case_id

_tokens = np.random.default_rng(1234).integers(0, 10, size=(4, 7))
_tokens_with_padding = _tokens.copy()
_tokens_with_padding[:, 0] = 0

CASES = [
    ("Embedding", (10, 3), {}, [_tokens]),
    ("Embedding", (10, 3), {"padding_idx": 0}, [_tokens_with_padding]),
    ("Embedding", (10, 3), {"padding_idx": -1}, [_tokens]),
    ("Embedding", (10, 3), {"max_norm": 1.0}, [_tokens]),
    ("EmbeddingBag", (7, 3), {}, [np.array([1, 2, 2, 0, 5, 6, 3]), np.array([0, 2, 2, 5])]),
    ("EmbeddingBag", (7, 3), {"mode": "max", "padding_idx": 0}, [np.array([[1, 2, 0], [0, 0, 6]])]),
    ("EmbeddingBag", (7, 3), {"mode": "sum", "max_norm": 1.0, "include_last_offset": True},
     [np.array([1, 2, 2, 0, 5, 6, 3]), np.array([0, 2, 2, 5, 7])]),
]


@pytest.mark.parametrize("case", CASES, ids=[module_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    check_module(name, args, kwargs, inputs)


def test_embedding_padding_row_and_from_pretrained():
    emb = nn.Embedding(6, 3, padding_idx=2)
    assert np.all(emb.weight.detach().numpy()[2] == 0)
    out = emb(dtorch.tensor([[2, 1, 2]]))
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[2], 0)
    np.testing.assert_array_equal(emb.weight.grad.numpy()[1], 1)

    weights = dtorch.tensor([[1.0, 2.3, 3.0], [4.0, 5.1, 6.3]])
    frozen = nn.Embedding.from_pretrained(weights)
    assert frozen.weight.requires_grad is False
    assert repr(frozen) == repr(torch.nn.Embedding.from_pretrained(torch.tensor(weights.numpy())))
    np.testing.assert_array_equal(frozen(dtorch.tensor([1])).numpy(), weights.numpy()[1:])
    trainable = nn.Embedding.from_pretrained(weights, freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(3, 2, padding_idx=3)
