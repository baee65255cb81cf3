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

from typing import Any

import torch
from torch import Tensor, nn
from transformers import DynamicCache

from hercules.backbones.compat import cache_key
from hercules.injection.base import MemoryLayer
from hercules.injection.chunk_recurrent import chunk_spans, mask_sizes, slice_layer_kwargs
from hercules.injection.registry import register_injection
from hercules.injection.strategy_configs import MACConfig, MAGConfig, MALConfig
from hercules.memory import MemoryState


@register_injection("mal", MALConfig)
class MAL(MemoryLayer):
    """Memory as a layer (Titans MAL): attention reads ``x + g ⊙ M(x)`` instead of ``x``.

    Borrowed from Titans: the memory is a layer in sequence before attention, reading and writing the same
    stream. Different: the memory's output is mixed into the pretrained layer's normalised input through a gate
    that starts closed (Titans stacks a memory layer and an attention layer trained together from scratch), so
    the pretrained model is unchanged until training opens the gate.

    Examples:
        >>> import hercules
        >>> from hercules.backbones.tiny import tiny_model
        >>> model = hercules.augment(tiny_model("llama"), {"injection": {"kind": "mal"}, "layers": [0]})
        >>> type(model.model.layers[0]).__name__
        'MAL'
    """

    def before_attention(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        return self.mix(x, self.read_write(x, ctx), x)


@register_injection("mac", MACConfig)
class MAC(MemoryLayer):
    """Memory as context (Titans MAC, adapted to a pretrained layer and its KV cache).

    The memory's retrieval ``m`` for the hidden states ``x`` is concatenated with them and projected back
    (``x + P[x; m]``, ``P`` starts at zero) to form the attention input; the attention output ``o`` is then
    mixed with ``m`` through the retrieval gate. Persistent tokens, when enabled, are written into each fresh
    memory state (Titans prepends them to the attention context instead, which would shift positions and the
    KV cache of a pretrained model).

    Borrowed from Titans: retrieval from the memory (as it was before the current chunk) is given to attention
    as context, and the memory's read is mixed into the attention output through a gate. Different: Titans
    writes the attention *output* into the memory; here the memory writes the attention's *input* stream. Writing
    the output would make each chunk's attention input depend on the previous chunk's attention output, forcing
    the pretrained layer to run chunk by chunk; with one write stream a whole sequence runs in one call and still
    equals token-by-token decoding. Retrieval joins the hidden states by concatenation and a projection (one
    token per position) rather than as extra attention tokens, for the same KV-cache reason.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adapter = kwargs.get("adapter", args[5] if len(args) > 5 else None)
        self._attention = [adapter.attention_of(self.base_layer)]  # a list: not registered as a submodule twice
        self.context_proj = nn.Linear(2 * self.dim, self.dim, bias=False)
        nn.init.zeros_(self.context_proj.weight)
        count = self.injection_config.persistent_tokens
        self.persistent = nn.Parameter(torch.randn(count, self.dim) * 0.02) if count else None

    def initial_state(self, batch_size: int, device: torch.device) -> MemoryState | None:
        if self.persistent is None:
            return None
        tokens = self.persistent.unsqueeze(0).expand(batch_size, -1, -1).to(device)
        return self.memory(tokens)[1]

    @property
    def writes_output(self) -> bool:
        return self.injection_config.write == "attention_output"

    @property
    def runs_rows(self) -> bool:
        return not self.writes_output  # writing the attention output runs the layer chunk by chunk, batched

    def before_attention(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        if self.writes_output:  # read only; the write comes after attention
            ctx["state"] = self.start_state(ctx["state"], x)
            m = self.memory.read(x, ctx["state"])
        else:
            m = self.read_write(x, ctx)
        ctx["retrieved"] = m
        return x + self.context_proj(torch.cat([x, m], dim=-1))

    def after_attention(self, out: Tensor, ctx: dict[str, Any]) -> Tensor:
        if not self.writes_output:
            return self.mix(out, ctx["retrieved"], out)
        read, ctx["new_state"] = self.memory(out, ctx["state"])
        return self.mix(out, read, out)

    def _run(self, hidden_states: Tensor, state: MemoryState | None, *args: Any, **kwargs: Any) -> tuple:
        """With ``write='attention_output'``, the base layer runs once per memory chunk (see
        :mod:`hercules.injection.chunk_recurrent`); otherwise once, as every strategy does."""
        if not self.writes_output:
            return super()._run(hidden_states, state, *args, **kwargs)
        if args:
            raise TypeError("MAC(write='attention_output') needs the decoder layer's arguments by keyword")
        length = hidden_states.shape[1]
        state = self.start_state(state, hidden_states)
        key = cache_key(kwargs, self.base_layer)  # `cache` in recent transformers, `past_key_values` before
        cache = kwargs.get(key)
        cache = cache if cache is not None else DynamicCache()
        past = cache.get_seq_length(self.layer_idx) if self.layer_idx < len(cache.layers) else 0
        kv_call = mask_sizes(cache, length, self.layer_idx)
        outs = []
        for span in chunk_spans(state.pending_tokens, length, self.memory.config.chunk_size):
            kv_piece = mask_sizes(cache, span[1] - span[0], self.layer_idx)
            piece = slice_layer_kwargs(kwargs, self._attention[0], span, past, kv_call, kv_piece, hidden_states)
            out, state = super()._run(hidden_states[:, span[0] : span[1]], state, **(piece | {key: cache}))
            outs.append(out[0] if isinstance(out, tuple) else out)
        return torch.cat(outs, dim=1), state


@register_injection("mag", MAGConfig)
class MAG(MemoryLayer):
    """Memory as a gate (Titans MAG): attention output ``o`` becomes ``o + g(x) ⊙ M(x)``.

    Borrowed from Titans: a memory branch in parallel with (the pretrained, possibly sliding-window) attention,
    combined through a data-dependent gate. Different: Titans multiplies the two branches (``y ⊗ M(x)``); here the
    gate adds the memory branch to the attention output, ``o + g ⊙ m`` with ``g = 0`` at init, so the pretrained
    attention output is kept exactly until training opens the gate.
    """

    def before_attention(self, x: Tensor, ctx: dict[str, Any]) -> Tensor:
        ctx["hidden"] = x
        ctx["retrieved"] = self.read_write(x, ctx)
        return x

    def after_attention(self, out: Tensor, ctx: dict[str, Any]) -> Tensor:
        return self.mix(out, ctx["retrieved"], ctx["hidden"])
