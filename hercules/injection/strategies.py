"""The built-in injection strategies: MAL (memory as a layer), MAC (memory as context), MAG (memory as a gate).

Each reads and writes its memory exactly once per forward call, on the normalised hidden state that the
attention sees, so the memory keeps the chunk semantics of :class:`~hercules.memory.NeuralMemory` (tokens of
chunk i read the memory as it was after chunk i−1): a whole sequence and the same sequence fed token by token
through the cache give the same outputs. The diagrams are in ``docs/concepts`` (and below).

MAL::

    h ─norm─> x ──> [memory] ─> m ──gate(x, m, x)──> attention ──> ...      attention input = x + g·m

MAC::

    h ─norm─> x ──> [memory] ─> m                                          (m read from earlier chunks)
              x ─concat(x, m)─proj─> x + P[x; m] ──> attention ──> o ──gate(o, m, o)──> o + g·m

MAG::

    h ─norm─> x ──> attention ──────────> o ──gate(o, m, x)──> o + g·m
              x ──> [memory] ─> m ────────┘
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from hercules.injection.base import MemoryLayer
from hercules.injection.registry import InjectionConfig, register_injection
from hercules.memory import MemoryState


class MALConfig(InjectionConfig):
    """Memory as a layer: the memory transforms the attention's (normalised) input."""

    kind: Literal["mal"] = "mal"


@register_injection("mal", MALConfig)
class MAL(MemoryLayer):
    """Memory as a layer (Titans MAL): attention reads ``x + g ⊙ M(x)`` instead of ``x``.

    Example:
        >>> import hercules
        >>> from hercules.backbones.tiny import tiny_model
        >>> model = hercules.augment(tiny_model("llama"), {"injection": {"kind": "mal"}, "layers": [0]})
        >>> type(model.model.layers[0]).__name__
        'MAL'
    """

    def before_attention(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        return self.mix(x, self.read_write(x, ctx), x)


class MACConfig(InjectionConfig):
    """Memory as context: retrieved memory joins the attention input; it is mixed into the output too."""

    kind: Literal["mac"] = "mac"
    persistent_tokens: int = Field(
        0, ge=0, description="Learned persistent-memory tokens written into every fresh memory before the input."
    )


@register_injection("mac", MACConfig)
class MAC(MemoryLayer):
    """Memory as context (Titans MAC, adapted to a pretrained layer and its KV cache).

    The memory's retrieval ``m`` for the hidden states ``x`` is concatenated with them and projected back
    (``x + P[x; m]``, ``P`` starts at zero) to form the attention input; the attention output ``o`` is then
    mixed with ``m`` through the retrieval gate. Persistent tokens, when enabled, are written into each fresh
    memory state (Titans prepends them to the attention context instead, which would shift positions and the
    KV cache of a pretrained model).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context_proj = nn.Linear(2 * self.dim, self.dim, bias=False)
        nn.init.zeros_(self.context_proj.weight)
        count = self.injection_config.persistent_tokens
        self.persistent = nn.Parameter(torch.randn(count, self.dim) * 0.02) if count else None

    def initial_state(self, batch_size: int, device: torch.device) -> MemoryState | None:
        if self.persistent is None:
            return None
        tokens = self.persistent.unsqueeze(0).expand(batch_size, -1, -1).to(device)
        return self.memory(tokens)[1]

    def before_attention(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        m = self.read_write(x, ctx)
        ctx["retrieved"] = m
        return x + self.context_proj(torch.cat([x, m], dim=-1))

    def after_attention(self, out: Tensor, ctx: dict[str, Any]) -> Tensor:
        return self.mix(out, ctx["retrieved"], out)


class MAGConfig(InjectionConfig):
    """Memory as a gate: a memory branch in parallel with attention, mixed through the gate."""

    kind: Literal["mag"] = "mag"


@register_injection("mag", MAGConfig)
class MAG(MemoryLayer):
    """Memory as a gate (Titans MAG): attention output ``o`` becomes ``o + g(x) ⊙ M(x)``."""

    def before_attention(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        ctx["hidden"] = x
        ctx["retrieved"] = self.read_write(x, ctx)
        return x

    def after_attention(self, out: Tensor, ctx: dict[str, Any]) -> Tensor:
        return self.mix(out, ctx["retrieved"], ctx["hidden"])
