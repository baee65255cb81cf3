"""Running a pretrained decoder layer chunk by chunk, so that its attention output can be written into the memory.

When a memory writes a layer's *attention output* and its reads feed the same layer's attention *input* (Titans'
memory as context), the attention input of chunk ``i`` depends on the attention output of chunk ``i − 1``. A
whole sequence then cannot go through the layer in one call: the layer runs once per memory chunk, its attention
reading the earlier chunks' keys and values from a KV cache (the model's own during generation, a local one
otherwise). The pieces are cut at the memory's chunk boundaries, so the reads inside a piece all see the same
weights, and feeding a sequence token by token through the model's cache gives the same result as feeding it whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn


def chunk_spans(pending: int, length: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` pieces of ``length`` new tokens cut where ``pending + position`` is a multiple of c."""
    start = 0
    while start < length:
        end = min(length, start + chunk_size - (pending + start) % chunk_size)
        yield start, end
        start = end


def mask_sizes(cache: Any, query_length: int, layer_idx: int) -> tuple[int, int]:
    """``(kv_length, kv_offset)`` of the keys the layer's attention will see for ``query_length`` new tokens:
    all earlier tokens for a full cache, the last ``window − 1`` for a sliding-window one."""
    if layer_idx < len(getattr(cache, "layers", ())):
        return cache.get_mask_sizes(query_length, layer_idx)
    return query_length, 0  # a lazily created layer: nothing cached yet


def piece_mask(
    attention: nn.Module, batch: int, first: int, queries: int, kv: tuple[int, int], like: Tensor
) -> Tensor:
    """A causal mask for the queries at absolute positions ``first …`` over the keys ``kv = (length, offset)``
    (with the layer's sliding window, if any), in the format of the layer's attention implementation."""
    rows = torch.arange(first, first + queries, device=like.device)[:, None]
    cols = torch.arange(kv[1], kv[1] + kv[0], device=like.device)[None, :]
    keep = cols <= rows
    window = getattr(attention, "sliding_window", None)
    if window:
        keep &= rows - cols < window
    keep = keep.expand(batch, 1, *keep.shape)
    implementation = attention.config._attn_implementation
    if implementation == "eager":
        zeros = torch.zeros(keep.shape, dtype=like.dtype, device=like.device)
        return zeros.masked_fill(~keep, torch.finfo(like.dtype).min)
    if implementation != "sdpa":
        raise ValueError(
            f"injection write='attention_output' supports the 'sdpa' and 'eager' attention implementations, "
            f"not {implementation!r}; load the backbone with attn_implementation='sdpa'"
        )
    return keep


def slice_layer_kwargs(
    kwargs: dict[str, Any],
    attention: nn.Module,
    span: tuple[int, int],
    past: int,
    kv_call: tuple[int, int],
    kv_piece: tuple[int, int],
    like: Tensor,
) -> dict[str, Any]:
    """The decoder layer's keyword arguments for the piece ``span`` of a call: positions and rotary tables
    sliced; the call's attention mask (if any) cut to the piece's queries and to the keys the cache will hold
    then (``kv_piece``, against ``kv_call`` for the whole call), or a causal mask built for the piece."""
    start, end = span
    piece = dict(kwargs)
    if piece.get("position_embeddings") is not None:
        piece["position_embeddings"] = tuple(t[:, start:end] for t in piece["position_embeddings"])
    for name in ("position_ids", "cache_position"):
        if isinstance(piece.get(name), Tensor):
            piece[name] = piece[name][..., start:end]
    mask = piece.get("attention_mask")
    if isinstance(mask, Tensor) and mask.dim() == 4:
        first = kv_piece[1] - kv_call[1]
        piece["attention_mask"] = mask[:, :, start:end, first : first + kv_piece[0]]
    else:
        piece["attention_mask"] = piece_mask(attention, like.shape[0], past + start, end - start, kv_piece, like)
    return piece
