"""Long inputs in segments: attention sees one segment at a time, the memory carries everything before it.

An input of length ``T`` is cut into segments of ``S`` tokens; each segment is one forward pass with no KV cache
from earlier segments (positions restart at 0), and only the memory states of the augmented layers are carried
from one segment to the next. Cost and activation memory therefore grow linearly in ``T``. For question
answering the question (and the answer) is read after the last segment, with the memory as its only view of the
context: :func:`generate_segmented`. With the memory switched off
(:func:`~hercules.injection.augment.memory_disabled`) this is exactly running the segments independently.

Examples:
    >>> import torch, hercules
    >>> from hercules.backbones.tiny import tiny_model
    >>> model = hercules.augment(tiny_model("llama"), {"segment_length": 8})
    >>> out = segmented_forward(model, torch.randint(3, 259, (1, 20)))
    >>> out.logits.shape, len(out.states)
    (torch.Size([1, 20, 259]), 1)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import DynamicCache

from hercules.backbones.compat import cache_argument
from hercules.injection.state import MemoryStates, attach_states


@dataclass
class SegmentedOutput:
    """Result of :func:`segmented_forward`: ``logits`` ``[B, T, V]`` (``None`` when not kept), the final memory
    ``states`` and, when labels were given, the mean next-token ``loss`` over the targets inside each segment (the
    first token of a segment is not a target: the previous segment's last position, which would predict it, is
    that segment's end)."""

    logits: Tensor | None
    states: MemoryStates
    loss: Tensor | None = None


def resolve_segment_length(model: nn.Module, segment_length: int | None) -> int:
    """``segment_length``, else the model's ``AugmentConfig.segment_length``; an error names both."""
    length = segment_length or getattr(getattr(model, "hercules_config", None), "segment_length", None)
    if not length or length < 1:
        raise ValueError("no segment length: pass segment_length=S or set AugmentConfig.segment_length")
    return int(length)


def segment_windows(total: int, segment_length: int | None = None,
                    segment_lengths: Sequence[int] | None = None) -> Iterator[slice]:
    """The windows of an input of ``total`` tokens: fixed ``segment_length`` pieces, or the given
    ``segment_lengths`` (whose last segment takes whatever remains, e.g. right padding)."""
    if segment_lengths is None:
        yield from (slice(s, s + segment_length) for s in range(0, total, segment_length))
        return
    if any(n < 1 for n in segment_lengths) or sum(segment_lengths[:-1]) >= total:
        raise ValueError(f"segment_lengths {list(segment_lengths)} do not fit an input of {total} tokens")
    start = 0
    for n in segment_lengths[:-1]:
        yield slice(start, start + n)
        start += n
    yield slice(start, total)


def segmented_forward(
    model: nn.Module,
    input_ids: Tensor,
    segment_length: int | None = None,
    attention_mask: Tensor | None = None,
    labels: Tensor | None = None,
    states: MemoryStates | None = None,
    detach_between: bool = False,
    segment_lengths: Sequence[int] | None = None,
    keep_logits: bool = True,
) -> SegmentedOutput:
    """Run ``input_ids`` ``[B, T]`` segment by segment with the memory carried (see the module docstring). A model
    without memory (a no-memory twin) reads each segment on its own.

    Args:
        states: memory to start from (fresh when ``None``); the returned states are new objects.
        detach_between: cut gradients between segments (truncated backpropagation through time).
        segment_lengths: explicit segments (e.g. a context's segments, then a question) instead of fixed
            ``segment_length`` pieces; the last one takes the rest of the input.
        keep_logits: ``False`` asks each segment for one position's logits and keeps none (``logits`` is
            ``None``): what reading a long context into the memory needs, since every segment's logits cost
            ``T × vocabulary`` floats (25 GB for 128k tokens of a 49k vocabulary). Not with ``labels``.
    """
    from hercules.injection.augment import memory_layers

    if labels is not None and not keep_logits:
        raise ValueError("segmented_forward: labels need the logits; pass keep_logits=True or no labels")
    length = None if segment_lengths is not None else resolve_segment_length(model, segment_length)
    states = MemoryStates(states or {})
    carry = {"memory_states": states} if memory_layers(model) else {}  # a plain backbone: segments independent
    keep = {} if keep_logits else {"logits_to_keep": 1}
    logits, losses, counts = [], [], []
    for window in segment_windows(input_ids.shape[1], length, segment_lengths):
        mask = None if attention_mask is None else attention_mask[:, window]
        out = model(input_ids[:, window], attention_mask=mask, use_cache=False, **keep, **carry)
        if keep_logits:
            logits.append(out.logits)
        if labels is not None:
            loss, count = _segment_loss(out.logits, labels[:, window])
            losses.append(loss)
            counts.append(count)
        if detach_between:
            states.detach_()
    loss = torch.stack(losses).sum() / max(sum(counts), 1) if labels is not None else None
    return SegmentedOutput(torch.cat(logits, dim=1) if keep_logits else None, states, loss)


def _segment_loss(logits: Tensor, labels: Tensor) -> tuple[Tensor, int]:
    """Summed next-token cross-entropy inside one segment (ignore index -100) and the number of targets."""
    targets = labels[:, 1:]
    loss = nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="sum"
    )
    return loss, int((targets != -100).sum())


@torch.no_grad()
def read_segments(
    model: nn.Module, input_ids: Tensor, segment_length: int | None = None,
    attention_mask: Tensor | None = None, states: MemoryStates | None = None,
) -> MemoryStates:
    """Read a long context ``[B, T]`` into the memory, segment by segment; returns the memory states.

    Only the memory is kept (:func:`segmented_forward` with ``keep_logits=False``): what the read holds is one
    segment's activations and the states, whatever the length. A plain backbone carries nothing: nothing is read.
    """
    from hercules.injection.augment import memory_layers

    if not memory_layers(model):
        return MemoryStates(states or {})
    return segmented_forward(model, input_ids, segment_length, attention_mask, states=states,
                             keep_logits=False).states


@torch.no_grad()
def generate_segmented(
    model: nn.Module, context_ids: Tensor, prompt_ids: Tensor, segment_length: int | None = None,
    context_mask: Tensor | None = None, **generate_kwargs,
) -> Tensor:
    """Read ``context_ids`` in segments, then ``generate`` from ``prompt_ids`` (the question) with the memory.

    Attention in the prompt and the answer sees only them; the context reaches them through the memory.
    Returns ``generate``'s output (prompt followed by the new tokens).
    """
    states = read_segments(model, context_ids, segment_length, context_mask)
    cache = attach_states(DynamicCache(config=model.config), states)
    return model.generate(prompt_ids, **{cache_argument(model): cache}, **generate_kwargs)
