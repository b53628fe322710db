"""``MultiheadAttention``: PyTorch's ``nn.MultiheadAttention`` with its parameter names, masks and return values.

Parameters: ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E,) when query, key and value have the embedding
size (else ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight``), ``out_proj`` (a Linear), and with
``add_bias_kv`` the ``bias_k``/``bias_v`` rows appended to the keys and values. A state_dict moves between torch
and dtorch as is.

Masks follow PyTorch: a bool mask is True where attention is *not* allowed, a float mask is added to the scores.
``attn_mask`` is (L, S) or (N*num_heads, L, S); ``key_padding_mask`` is (N, S). A row whose keys are all masked
gives NaN, as in PyTorch. The returned weights are the post-dropout attention probabilities (PyTorch's too),
averaged over heads unless ``average_attn_weights=False``.

The math runs batch-first internally, heads split by a reshape and a permute, one batched matmul for the scores
and one for the weighted values; no fast path differs numerically from this one, so ``need_weights=False``
only skips returning the weights.
"""

import math

from dtorch import _backend, factories, functional
from dtorch.nn import functional as F
from dtorch.nn import init
from dtorch.nn.modules.linear import Linear
from dtorch.nn.modules.module import Module
from dtorch.nn.parameter import Parameter
from dtorch.tensor import Size

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """``out_proj``'s class: a plain Linear under the name PyTorch prints (it marks the layer for quantisation)."""


def _float_mask(mask, dtype, name):
    """A bool mask becomes 0 / -inf in ``dtype``; a float mask is used as is (cast to ``dtype``)."""
    if mask is None:
        return None
    if mask.dtype == _backend.bool_:
        zeros = factories.zeros(mask.shape, dtype=dtype, device=mask.device)
        return zeros.masked_fill(mask, float("-inf"))
    if not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask.to(dtype)


class MultiheadAttention(Module):
    r"""Attention over ``num_heads`` parallel heads: ``softmax(Q K^T / sqrt(d) + mask) V``, then ``out_proj``.

    Args:
        embed_dim: model width E. num_heads: heads (E must divide evenly). dropout: on the attention weights.
        bias: projection biases (default True). add_bias_kv: learn a bias row appended to keys and values.
        add_zero_attn: append a zero row to keys and values. kdim, vdim: key/value widths (default E).
        batch_first: inputs and output as (N, L, E) instead of (L, N, E).

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns ``(attn_output, attn_weights)``; the weights are None
    when ``need_weights`` is False.

    >>> import dtorch
    >>> mha = MultiheadAttention(16, 4, batch_first=True)
    >>> x = dtorch.randn(2, 5, 16)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    (dtorch.Size([2, 5, 16]), dtorch.Size([2, 5, 5]))
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                f"num_heads={num_heads} instead"
            )
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        factory = {"device": device, "dtype": dtype}
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(factories.empty((embed_dim, embed_dim), **factory))
            self.k_proj_weight = Parameter(factories.empty((embed_dim, self.kdim), **factory))
            self.v_proj_weight = Parameter(factories.empty((embed_dim, self.vdim), **factory))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(factories.empty((3 * embed_dim, embed_dim), **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(factories.empty((3 * embed_dim,), **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = Parameter(factories.empty((1, 1, embed_dim), **factory))
            self.bias_v = Parameter(factories.empty((1, 1, embed_dim), **factory))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
                "`generate_square_subsequent_mask` to create this mask."
            )
        batched = query.dim() == 3
        if not batched:
            if query.dim() != 2 or key.dim() != 2 or value.dim() != 2:
                raise AssertionError(
                    f"query should be unbatched 2D or batched 3D tensor but received {query.dim()}-D query tensor"
                )
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                if key_padding_mask.dim() != 1:
                    raise AssertionError(
                        "For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D but found "
                        f"{key_padding_mask.dim()}-D tensor instead"
                    )
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            if key.dim() != 3 or value.dim() != 3:
                raise AssertionError(
                    f"For batched (3-D) `query`, expected `key` and `value` to be 3-D but found {key.dim()}-D and "
                    f"{value.dim()}-D tensors respectively"
                )
            same_kv = key is value
            self_attention = same_kv and query is key
            query = query.transpose(0, 1)
            if self_attention:
                key = value = query
            else:
                key = key.transpose(0, 1)
                value = key if same_kv else value.transpose(0, 1)
        output, weights = self._attend(query, key, value, key_padding_mask, need_weights, attn_mask,
                                       average_attn_weights)
        if not batched:
            output = output.squeeze(0)
            if weights is not None:
                weights = weights.squeeze(0)
        elif not self.batch_first:
            output = output.transpose(0, 1)
        return output, weights

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights):
        """Batch-first attention: query (N, L, E), key (N, S, kdim), value (N, S, vdim)."""
        batch, target_len, embed_dim = query.shape
        if embed_dim != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but got {embed_dim}")
        if key.shape[:2] != value.shape[:2]:
            raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
        heads, head_dim = self.num_heads, self.head_dim
        E = self.embed_dim

        # ---- projections
        bias = self.in_proj_bias
        b_q = b_k = b_v = None
        if bias is not None:
            b_q, b_k, b_v = bias[:E], bias[E:2 * E], bias[2 * E:]
        if self._qkv_same_embed_dim:
            weight = self.in_proj_weight
            if query is key and key is value and self.bias_k is None:
                qkv = F.linear(query, weight, bias)
                qkv = qkv.reshape(batch, target_len, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
                q, k, v = qkv[0], qkv[1], qkv[2]
                k_heads_done = True
            else:
                q = F.linear(query, weight[:E], b_q)
                if key is value:
                    kv = F.linear(key, weight[E:], None if bias is None else bias[E:])
                    k, v = kv[..., :E], kv[..., E:]
                else:
                    k = F.linear(key, weight[E:2 * E], b_k)
                    v = F.linear(value, weight[2 * E:], b_v)
                k_heads_done = False
        else:
            q = F.linear(query, self.q_proj_weight, b_q)
            k = F.linear(key, self.k_proj_weight, b_k)
            v = F.linear(value, self.v_proj_weight, b_v)
            k_heads_done = False

        if self.bias_k is not None:
            k = functional.cat([k, self.bias_k.expand(batch, 1, E)], 1)
            v = functional.cat([v, self.bias_v.expand(batch, 1, E)], 1)
            attn_mask = _pad_last(attn_mask)
            key_padding_mask = _pad_last(key_padding_mask)
        if not k_heads_done:
            q = q.reshape(batch, target_len, heads, head_dim).permute(0, 2, 1, 3)
            k = k.reshape(batch, k.shape[1], heads, head_dim).permute(0, 2, 1, 3)
            v = v.reshape(batch, v.shape[1], heads, head_dim).permute(0, 2, 1, 3)
        if self.add_zero_attn:
            zeros = factories.zeros((batch, heads, 1, head_dim), dtype=k.dtype, device=k.device)
            k = functional.cat([k, zeros], 2)
            v = functional.cat([v, zeros], 2)
            attn_mask = _pad_last(attn_mask)
            key_padding_mask = _pad_last(key_padding_mask)
        source_len = k.shape[2]

        # ---- masks, merged into one additive float mask broadcasting against (N, heads, L, S)
        mask = None
        if attn_mask is not None:
            mask = _float_mask(attn_mask, q.dtype, "attn_mask")
            if mask.dim() == 2:
                if tuple(mask.shape) != (target_len, source_len):
                    raise RuntimeError(
                        f"The shape of the 2D attn_mask is {mask.shape}, but should be "
                        f"{Size([target_len, source_len])}."
                    )
            elif mask.dim() == 3:
                if tuple(mask.shape) != (batch * heads, target_len, source_len):
                    raise RuntimeError(
                        f"The shape of the 3D attn_mask is {mask.shape}, but should be "
                        f"{Size([batch * heads, target_len, source_len])}."
                    )
                mask = mask.reshape(batch, heads, target_len, source_len)
            else:
                raise RuntimeError(f"attn_mask's dimension {mask.dim()} is not supported")
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (batch, source_len):
                raise AssertionError(
                    f"expecting key_padding_mask shape of {(batch, source_len)}, but got "
                    f"{tuple(key_padding_mask.shape)}"
                )
            padding = _float_mask(key_padding_mask, q.dtype, "key_padding_mask").reshape(batch, 1, 1, source_len)
            mask = padding if mask is None else mask + padding

        # ---- scores, weights, values
        scores = functional.matmul(q * (1.0 / math.sqrt(head_dim)), k.transpose(-2, -1))
        if mask is not None:
            scores = scores + mask
        weights = F.softmax(scores, dim=-1)
        if self.dropout > 0.0 and self.training:
            weights = F.dropout(weights, p=self.dropout)
        context = functional.matmul(weights, v)  # (N, heads, L, head_dim)
        context = context.permute(0, 2, 1, 3).reshape(batch, target_len, E)
        output = self.out_proj(context)
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return output, weights


def _pad_last(mask):
    """Append one allowed (zero / False) column to a mask, for an appended key."""
    if mask is None:
        return None
    column = factories.zeros((*mask.shape[:-1], 1), dtype=mask.dtype, device=mask.device)
    return functional.cat([mask, column], -1)
