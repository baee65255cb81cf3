"""Where augmented layers keep their memory state between calls: on the HF cache, or in a carried container.

During ``generate()`` each augmented layer stores its :class:`~hercules.memory.MemoryState` on the HF cache
object, so the memory travels with the KV cache and is reordered with it in beam search. Without a cache (training
forward passes) every call starts from a fresh memory, unless the caller passes a :class:`MemoryStates` container
as ``memory_states=``: its states are read as the starting point and replaced by the new ones after the call.

Left-padded batches (batched generation, evaluation): the memory would read the padding as text, and each
sample's chunks start at its own first token, so its unfinished chunk has its own length. Outside training the
augmented model therefore runs such a batch's memory sample by sample, without the padding, and keeps a
:class:`RowStates` (one state per sample) on the cache until the generation ends.

Examples:
    >>> states = MemoryStates()
    >>> # out = model(segment_1, memory_states=states); out = model(segment_2, memory_states=states)
    >>> len(states)
    0
"""

from __future__ import annotations

from typing import Any

import torch

CACHE_ATTR = "_hercules_memory"


class MemoryStates(dict):
    """Memory states of an augmented model by decoder-layer index: ``{layer_idx: MemoryState}``."""

    def detach(self) -> MemoryStates:
        """Cut autograd history of every state (truncated backpropagation between segments)."""
        return MemoryStates({i: s.detach() for i, s in self.items()})

    def detach_(self) -> MemoryStates:
        """In-place :meth:`detach`; returns ``self``."""
        for i, s in list(self.items()):
            self[i] = s.detach()
        return self

    def index_select(self, index: torch.Tensor) -> MemoryStates:
        """Select or reorder samples (beams) of every state."""
        return MemoryStates({i: s.index_select(index) for i, s in self.items()})

    def to(self, *args: Any, **kwargs: Any) -> MemoryStates:
        return MemoryStates({i: s.to(*args, **kwargs) for i, s in self.items()})


class RowStates(list):
    """One :class:`~hercules.memory.MemoryState` (batch 1) per sample, for samples whose memories stand at
    different points of a chunk (left-padded batches); ``None`` for a sample that has seen no text yet."""

    @property
    def batch_size(self) -> int:
        return len(self)

    @property
    def stats(self) -> dict[str, torch.Tensor]:
        """Each statistic's mean over the samples that have a state."""
        states = [s for s in self if s is not None and s.stats]
        if not states:
            return {}
        return {k: torch.stack([s.stats[k] for s in states]).mean(0) for k in states[0].stats}

    def index_select(self, index: torch.Tensor) -> RowStates:
        return RowStates(self[i] for i in index.tolist())

    def detach(self) -> RowStates:
        return RowStates(None if s is None else s.detach() for s in self)

    def to(self, *args: Any, **kwargs: Any) -> RowStates:
        return RowStates(None if s is None else s.to(*args, **kwargs) for s in self)


def cache_states(cache: Any, create: bool = False) -> MemoryStates | None:
    """The memory states stored on an HF ``cache`` (created, with beam reordering wired, when ``create``)."""
    if cache is None:
        return None
    states = getattr(cache, CACHE_ATTR, None)
    if states is None and create:
        states = MemoryStates()
        setattr(cache, CACHE_ATTR, states)
        _follow_reorder(cache)
    return states


def attach_states(cache: Any, states: MemoryStates) -> Any:
    """Seed ``cache`` (e.g. a fresh ``DynamicCache``) with ``states`` before ``generate(past_key_values=cache)``."""
    target = cache_states(cache, create=True)
    target.clear()
    target.update(states)
    return cache


_REORDERING: dict[type, type] = {}


def _follow_reorder(cache: Any) -> None:
    """Make ``cache.reorder_cache(beam_idx)`` (beam search) reorder the memory states too.

    The cache's class is swapped for a subclass (made once per cache class) whose ``reorder_cache`` also reorders
    the states stored on the instance, so copies of the cache (``copy.deepcopy``) keep doing the right thing.
    """
    cls = type(cache)
    if cls in _REORDERING.values() or not hasattr(cls, "reorder_cache"):
        return
    if cls not in _REORDERING:

        def reorder_cache(self: Any, beam_idx: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            result = super(subclass, self).reorder_cache(beam_idx, *args, **kwargs)
            states = getattr(self, CACHE_ATTR, None) or {}
            for i, state in list(states.items()):
                states[i] = state.index_select(beam_idx)
            return result

        subclass = type(cls.__name__, (cls,), {"reorder_cache": reorder_cache, "__module__": cls.__module__})
        _REORDERING[cls] = subclass
    cache.__class__ = _REORDERING[cls]
