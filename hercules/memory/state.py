"""The memory's state: an explicit, per-sample value passed into and returned by the layer.

Every tensor has the batch as its first dimension, so a sample's state can be selected, reordered (beam search),
detached (truncated backprop), moved and saved independently of the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from hercules.memory.signature import StateMismatchError, StateSignature, state_problems

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
        signature: what produced the state (:class:`~hercules.memory.signature.StateSignature`); a layer refuses
            a state whose signature or shapes do not match its own. ``None`` for a hand-built state (then only
            the shapes are checked).
    """

    weights: dict[str, Tensor]
    momentum: dict[str, Tensor]
    pending: dict[str, Tensor]
    conv: Tensor | None = None
    stats: dict[str, Tensor] = field(default_factory=dict)
    signature: StateSignature | None = None

    @property
    def batch_size(self) -> int:
        return next(iter(self.weights.values())).shape[0]

    @property
    def pending_tokens(self) -> int:
        return self.pending["q"].shape[1]

    def map(self, fn: Callable[[Tensor], Tensor], stats: bool = True) -> MemoryState:
        """A new state with ``fn`` applied to every tensor (``stats`` too when ``stats`` is true)."""
        new = MemoryState(
            weights={n: fn(t) for n, t in self.weights.items()},
            momentum={n: fn(t) for n, t in self.momentum.items()},
            pending={n: fn(t) for n, t in self.pending.items()},
            conv=None if self.conv is None else fn(self.conv),
            stats={n: fn(t) for n, t in self.stats.items()} if stats else dict(self.stats),
        )
        if self.signature is not None and new.weights:
            new.signature = replace(self.signature, dtype=str(next(iter(new.weights.values())).dtype))
        return new

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
    def from_tensors(cls, flat: dict[str, Tensor], signature: StateSignature | None = None) -> MemoryState:
        """The inverse of :meth:`tensors`; an unknown key raises :class:`StateMismatchError` naming it."""
        groups: dict[str, dict[str, Tensor]] = {"weights": {}, "momentum": {}, "pending": {}, "stats": {}}
        for key, tensor in flat.items():
            group, _, name = key.partition(".")
            if key != "conv" and (group not in groups or not name):
                raise StateMismatchError(
                    f"unknown state tensor {key!r}; expected conv or weights.*, momentum.*, pending.*, stats.*"
                )
            if key != "conv":
                groups[group][name] = tensor
        return cls(**groups, conv=flat.get("conv"), signature=signature)


def save_state(state: MemoryState, path: str | Path) -> None:
    """Save to a safetensors file (contiguous copies; tensors are detached), with the state's signature."""
    tensors = {k: t.detach().contiguous() for k, t in state.tensors().items()}
    metadata = {"format": FORMAT, "keys": json.dumps(sorted(tensors))}
    if state.signature is not None:
        metadata["signature"] = state.signature.to_json()
    save_file(tensors, str(path), metadata=metadata)


def load_state(path: str | Path, device: str | torch.device = "cpu") -> MemoryState:
    """Load a state written by :func:`save_state`, checking its format, keys and shapes.

    Raises :class:`StateMismatchError` (a ``ValueError``) naming the file and the problem: not a readable
    safetensors file (truncated?), another format, unknown or missing tensors, shapes that disagree.
    """
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            metadata = handle.metadata() or {}
            flat = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for damaged files
        raise StateMismatchError(f"{path}: not a readable safetensors file, truncated or damaged? ({err})") from None
    if metadata.get("format") != FORMAT:
        raise StateMismatchError(
            f"{path}: format {metadata.get('format')!r}, expected {FORMAT!r}; save states with save_state"
        )
    try:
        signature = StateSignature.from_json(metadata["signature"]) if "signature" in metadata else None
        state = MemoryState.from_tensors(flat, signature)
        problems = state_problems(state, signature or _implied_signature(state))
    except StateMismatchError as err:
        raise StateMismatchError(f"{path}: {err}") from None
    if problems:
        raise StateMismatchError(f"{path}: {'; '.join(problems)}")
    return state


def _implied_signature(state: MemoryState) -> StateSignature:
    """The signature the state's own tensors imply (for files saved without one): its shapes must agree."""
    if not state.weights or "q" not in state.pending or state.pending["q"].dim() != 4:
        raise StateMismatchError("missing tensors: a state has weights.*, momentum.* and pending.q/k/v/lr/mom/forget")
    weights = next(iter(state.weights.values()))
    _, _, heads, dim_head = state.pending["q"].shape
    conv = state.conv
    return StateSignature(
        heads=heads, dim_head=dim_head, model="(unknown)",
        shapes=tuple(sorted((n, tuple(t.shape[1:])) for n, t in state.weights.items())),
        chunk_size=2**31,  # unknown: any pending length below it passes
        conv_kernel=0 if conv is None else conv.shape[1] + 1, conv_channels=0 if conv is None else conv.shape[2],
        dtype=str(weights.dtype),
    )
