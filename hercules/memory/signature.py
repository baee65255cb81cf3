"""What produced a memory state, and the checks that a state fits a layer.

A :class:`~hercules.memory.state.MemoryState` carries the :class:`StateSignature` of the layer that made it. A
layer given a state compares signatures and then the tensors' shapes (:func:`state_problems`), so that a state
from another layer, a hand-built or an edited one fails on entry with the mismatch named, instead of giving
wrong outputs (another convolution width changes the output length; another chunk size shifts chunk boundaries)
or a raw error deep inside the update.

Examples:
    >>> from hercules.memory import MemoryConfig, NeuralMemory
    >>> a, b = NeuralMemory(16, MemoryConfig(chunk_size=4)), NeuralMemory(16, MemoryConfig(chunk_size=8))
    >>> a.signature().differences(b.signature())
    ['chunk_size is 4 in the state, 8 in the layer']
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from hercules.memory.state import MemoryState

PENDING = ("q", "k", "v", "lr", "mom", "forget")


class StateMismatchError(ValueError):
    """A memory state that does not fit the layer (or file) it is used with; the message names the mismatch."""


@dataclass(frozen=True)
class StateSignature:
    """The settings of the layer that produced a state.

    Attributes:
        heads, dim_head: the memory's heads ``H`` and head size ``d``.
        model: memory model kind (``mlp``, ``linear``, ...); shapes: its weights' per-sample shapes ``[H, ...]``.
        chunk_size: tokens per chunk; conv_kernel: convolution width (0 without convolution); conv_channels: ``C``.
        dtype: the state tensors' dtype, as ``str(torch.dtype)``.
    """

    heads: int
    dim_head: int
    model: str
    shapes: tuple[tuple[str, tuple[int, ...]], ...]
    chunk_size: int
    conv_kernel: int
    conv_channels: int
    dtype: str

    def differences(self, layer: StateSignature) -> list[str]:
        """One phrase per field where ``self`` (a state's) differs from ``layer``'s."""
        return [
            f"{f.name} is {_show(getattr(self, f.name))} in the state, {_show(getattr(layer, f.name))} in the layer"
            for f in fields(self)
            if getattr(self, f.name) != getattr(layer, f.name)
        ]

    @cached_property
    def _expected(self) -> tuple[dict[str, tuple[int, ...]], torch.dtype | None]:
        """Per-sample weight shapes by name and the torch dtype, for the fast check in :func:`check_state`."""
        return dict(self.shapes), getattr(torch, self.dtype.removeprefix("torch."), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"shapes": {n: list(s) for n, s in self.shapes}}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StateSignature:
        """Parse :meth:`to_json`'s output; a malformed record raises :class:`StateMismatchError`."""
        try:
            raw = json.loads(text)
            raw["shapes"] = tuple((str(n), tuple(int(d) for d in s)) for n, s in sorted(raw["shapes"].items()))
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise StateMismatchError(f"the state's signature record is malformed ({type(err).__name__}: {err})") from None


def _show(value: Any) -> str:
    return str(dict(value)) if isinstance(value, tuple) and value and isinstance(value[0], tuple) else str(value)


def state_problems(state: MemoryState, sig: StateSignature) -> list[str]:
    """Every way the state's tensors disagree with the shapes ``sig`` implies (empty when it fits)."""
    batch = next(iter(state.weights.values())).shape[0] if state.weights else None
    problems = _group_problems(state, sig, batch)
    pending = state.pending
    if set(pending) != set(PENDING):
        problems.append(f"pending has {sorted(pending)}, expected {sorted(PENDING)}")
        return problems
    length = pending["q"].shape[1] if pending["q"].dim() > 1 else -1
    for name, tensor in pending.items():
        want = (batch, length, sig.heads, sig.dim_head) if name in ("q", "k", "v") else (batch, length, sig.heads)
        if tuple(tensor.shape) != want:
            problems.append(f"pending.{name} has shape {list(tensor.shape)}, expected {list(want)}")
    if not 0 <= length < sig.chunk_size:
        problems.append(f"{length} pending tokens, but a chunk of {sig.chunk_size} holds at most "
                        f"{sig.chunk_size - 1}")
    problems += _conv_problems(state, sig, batch)
    memory = [*state.weights.values(), *state.momentum.values(), *pending.values()]
    stray = sorted({str(t.dtype) for t in [*memory, *([state.conv] if state.conv is not None else [])]} - {sig.dtype})
    if stray:
        problems.append(f"tensors of dtype {', '.join(stray)}, the layer computes in {sig.dtype}")
    return problems


def _group_problems(state: MemoryState, sig: StateSignature, batch: int | None) -> list[str]:
    problems = []
    shapes = dict(sig.shapes)
    for group in ("weights", "momentum"):
        tensors = getattr(state, group)
        if set(tensors) != set(shapes):
            problems.append(f"{group} has {sorted(tensors)}, the {sig.model!r} memory has {sorted(shapes)}")
            continue
        for name, tensor in tensors.items():
            if tuple(tensor.shape) != (batch, *shapes[name]):
                problems.append(f"{group}.{name} has shape {list(tensor.shape)}, expected "
                                f"{[batch, *shapes[name]]}")
    return problems


def _conv_problems(state: MemoryState, sig: StateSignature, batch: int | None) -> list[str]:
    if sig.conv_kernel == 0:
        return [] if state.conv is None else ["the state has a convolution cache, the layer has no convolution"]
    if state.conv is None:
        return [f"the state has no convolution cache, the layer has a convolution of width {sig.conv_kernel}"]
    want = (batch, sig.conv_kernel - 1, sig.conv_channels)
    if tuple(state.conv.shape) != want:
        return [f"conv has shape {list(state.conv.shape)}, expected {list(want)} (convolution width "
                f"{sig.conv_kernel})"]
    return []


def _fits(state: MemoryState, sig: StateSignature, weights: bool = True) -> bool:
    """Whether the tensors of ``state`` have the shapes and dtype ``sig`` implies: the fast check made on every
    call (a decoding step), without building messages; :func:`state_problems` explains a ``False``. With
    ``weights=False`` (a state whose signature matches: its weights were made by such a layer) only the pending
    tokens and the convolution cache, the parts a caller is likely to edit, are checked."""
    shapes, dtype = sig._expected
    pending, conv = state.pending, state.conv
    q = pending.get("q")
    if len(pending) != len(PENDING) or q is None or q.dim() != 4 or q.dtype != dtype:
        return False
    batch, length = q.shape[:2]
    if q.shape[2:] != (sig.heads, sig.dim_head) or length >= sig.chunk_size:
        return False
    for name in ("k", "v"):
        tensor = pending.get(name)
        if tensor is None or tensor.shape != q.shape or tensor.dtype != dtype:
            return False
    for name in ("lr", "mom", "forget"):
        tensor = pending.get(name)
        if tensor is None or tensor.shape != q.shape[:3] or tensor.dtype != dtype:
            return False
    if (conv is None) != (sig.conv_kernel == 0):
        return False
    if conv is not None and (conv.dtype != dtype or conv.shape != (batch, sig.conv_kernel - 1, sig.conv_channels)):
        return False
    if not weights:
        return next(iter(state.weights.values())).shape[0] == batch if state.weights else False
    if state.weights.keys() != shapes.keys() or state.momentum.keys() != shapes.keys():
        return False
    return all(
        t.dtype == dtype and t.shape[0] == batch and t.shape[1:] == shapes[name]
        for group in (state.weights, state.momentum) for name, t in group.items()
    )


def check_state(state: MemoryState, sig: StateSignature, where: str = "memory state") -> None:
    """Raise :class:`StateMismatchError` naming every mismatch between ``state`` and a layer of signature ``sig``."""
    if state.signature is None and _fits(state, sig) or state.signature == sig and _fits(state, sig, weights=False):
        return
    problems = state.signature.differences(sig) if state.signature is not None else []
    problems = problems or state_problems(state, sig)
    if problems:
        raise StateMismatchError(
            f"{where} does not fit this memory layer: {'; '.join(problems)}. Use a state made by this layer "
            "(init_state or a previous call), or a layer with the state's config"
        )
