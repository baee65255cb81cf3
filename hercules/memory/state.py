"""The memory's state: an explicit, per-sample value passed into and returned by the layer.

Every tensor has the batch as its first dimension, so a sample's state can be selected, reordered (beam search),
detached (truncated backprop), moved and saved independently of the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

FORMAT = "hercules.memory_state/1"


@dataclass
class MemoryState:
    """State of one :class:`~hercules.memory.NeuralMemory` for a batch.

    Attributes:
        weights: memory weights, ``name → [B, H, ...]``.
        momentum: momentum (accumulated surprise), same shapes as ``weights``.
        pending: projected inputs of the unfinished chunk, read already but not yet written: ``q``, ``k``, ``v``
            ``[B, p, H, d]`` and the rates ``lr``, ``mom``, ``forget`` ``[B, p, H]``, with ``p < chunk_size``.
        conv: the causal convolution's cache ``[B, K−1, C]``, or ``None`` without convolution.
        stats: detached diagnostics of the last call (means over the batch); not part of the memory itself.
    """

    weights: dict[str, Tensor]
    momentum: dict[str, Tensor]
    pending: dict[str, Tensor]
    conv: Tensor | None = None
    stats: dict[str, Tensor] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return next(iter(self.weights.values())).shape[0]

    @property
    def pending_tokens(self) -> int:
        return self.pending["q"].shape[1]

    def map(self, fn: Callable[[Tensor], Tensor], stats: bool = True) -> MemoryState:
        """A new state with ``fn`` applied to every tensor (``stats`` too when ``stats`` is true)."""
        return MemoryState(
            weights={n: fn(t) for n, t in self.weights.items()},
            momentum={n: fn(t) for n, t in self.momentum.items()},
            pending={n: fn(t) for n, t in self.pending.items()},
            conv=None if self.conv is None else fn(self.conv),
            stats={n: fn(t) for n, t in self.stats.items()} if stats else dict(self.stats),
        )

    def detach(self) -> MemoryState:
        """Cut the autograd history (truncated backpropagation through time)."""
        return self.map(Tensor.detach)

    def to(self, *args, **kwargs) -> MemoryState:
        """Move or cast like :meth:`torch.Tensor.to`."""
        return self.map(lambda t: t.to(*args, **kwargs))

    def index_select(self, index: Tensor) -> MemoryState:
        """Select or reorder samples (e.g. beams) by ``index`` ``[B']``."""
        return self.map(lambda t: t.index_select(0, index.to(t.device)), stats=False)

    def tensors(self) -> dict[str, Tensor]:
        """Flat ``group.name → tensor`` view, as saved to safetensors."""
        flat = {f"weights.{n}": t for n, t in self.weights.items()}
        flat |= {f"momentum.{n}": t for n, t in self.momentum.items()}
        flat |= {f"pending.{n}": t for n, t in self.pending.items()}
        flat |= {f"stats.{n}": t for n, t in self.stats.items()}
        if self.conv is not None:
            flat["conv"] = self.conv
        return flat

    @classmethod
    def from_tensors(cls, flat: dict[str, Tensor]) -> MemoryState:
        groups: dict[str, dict[str, Tensor]] = {"weights": {}, "momentum": {}, "pending": {}, "stats": {}}
        for key, tensor in flat.items():
            if key != "conv":
                group, name = key.split(".", 1)
                groups[group][name] = tensor
        return cls(**groups, conv=flat.get("conv"))


def save_state(state: MemoryState, path: str | Path) -> None:
    """Save to a safetensors file (contiguous copies; tensors are detached)."""
    tensors = {k: t.detach().contiguous() for k, t in state.tensors().items()}
    save_file(tensors, str(path), metadata={"format": FORMAT, "keys": json.dumps(sorted(tensors))})


def load_state(path: str | Path, device: str | torch.device = "cpu") -> MemoryState:
    """Load a state written by :func:`save_state`."""
    flat = load_file(str(path), device=str(device))
    return MemoryState.from_tensors(flat)
