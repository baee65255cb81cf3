"""``NeuralMemory``: the memory layer, with the projections that produce q, k, v and the rates.

``y, state = memory(x, state)`` reads and writes a per-sample memory while ``x`` ``[B, T, D]`` streams through.
The exact semantics (chunks, momentum, forgetting) are those of :mod:`hercules.ops.memory_update_naive`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hercules.memory.config import MemoryConfig
from hercules.memory.models import MEMORY_MODELS
from hercules.memory.rules import UPDATE_RULES, Rates
from hercules.memory.signature import StateSignature, check_state
from hercules.memory.state import MemoryState
from hercules.ops import causal_conv1d, causal_conv1d_naive
from hercules.registry import build

RATE_NAMES = ("lr", "mom", "forget")


# Layout changes below are plain views and permutes rather than einops patterns: a decoding step calls this layer
# once per token, and its sixteen patterns cost a sixth of its host time (257 → 215 µs per call on one CPU core).
def _to_rows(x: Tensor) -> Tensor:
    """``[B, T, H, ...]`` → ``[B·H, T, ...]``: one row per sample and head."""
    return x.transpose(1, 2).flatten(0, 1)


def _from_rows(y: Tensor, batch: int) -> Tensor:
    """``[B·H, T, d]`` → ``[B, T, H·d]``."""
    return y.unflatten(0, (batch, -1)).transpose(1, 2).flatten(2)


def _norm(group: dict[str, Tensor]) -> Tensor:
    """Mean over samples of the Frobenius norm of a group of ``[B, H, ...]`` tensors (over all heads)."""
    return torch.stack([t.flatten(1).pow(2).sum(-1) for t in group.values()]).sum(0).sqrt().mean()


class NeuralMemory(nn.Module):
    """A test-time-trained memory layer.

    Args:
        dim: model width ``D`` of the inputs and outputs.
        config: see :class:`~hercules.memory.MemoryConfig`.

    Examples:
        >>> import torch
        >>> memory = NeuralMemory(16, MemoryConfig(heads=2, chunk_size=4))
        >>> x = torch.randn(2, 10, 16)
        >>> y, state = memory(x)                      # whole sequence
        >>> y1, s = memory(x[:, :3])                  # or in pieces, with the state carried
        >>> y2, s = memory(x[:, 3:], s)
        >>> torch.allclose(torch.cat([y1, y2], 1), y, atol=1e-6)
        True
    """

    def __init__(self, dim: int, config: MemoryConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MemoryConfig()
        self.dim, self.heads, self.dim_head = dim, config.heads, config.head_size(dim)
        inner = self.heads * self.dim_head
        self.norm = nn.RMSNorm(dim) if config.input_norm else nn.Identity()
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.conv_weight = None
        if config.conv_kernel > 1:
            weight = torch.zeros(3 * inner, config.conv_kernel)
            if config.conv_init == "identity":
                weight[:, -1] = 1.0  # starts as the identity, so the projections keep their meaning
            else:  # as nn.Conv1d (depthwise: fan-in = kernel width)
                bound = 1 / math.sqrt(config.conv_kernel)
                nn.init.uniform_(weight, -bound, bound)
            self.conv_weight = nn.Parameter(weight)
        self.model = build(MEMORY_MODELS, config.model, self.dim_head, self.heads)
        if config.compile and not self.naive:
            # shapes are fixed per chunk, so one static graph serves every full chunk
            self.model.read_and_gradients = torch.compile(self.model.read_and_gradients, dynamic=False)
        self.rule = build(UPDATE_RULES, config.rule, dim, self.heads)
        self.out_proj = nn.Linear(inner, dim, bias=False)
        if config.zero_init_output:
            nn.init.zeros_(self.out_proj.weight)
        self._graphs: dict[tuple, Callable] = {}  # config.cuda_graphs: captured runs by input signature

    def __getstate__(self) -> dict:
        # captured graphs are bound to this module's parameter storage: a copy starts without them
        return self.__dict__ | {"_graphs": {}}

    @property
    def naive(self) -> bool:
        return self.config.implementation == "naive"

    def signature(self) -> StateSignature:
        """What a state of this layer records about it (checked when a state comes back in)."""
        dtype = self.to_qkv.weight.dtype
        key = dtype  # the shapes are fixed at construction; a cast (module.to) changes the dtype
        if getattr(self, "_signature_key", None) != key:
            conv = self.conv_weight
            self._signature = StateSignature(
                heads=self.heads, dim_head=self.dim_head, model=self.config.model.kind,
                shapes=tuple(sorted((n, tuple(p.shape)) for n, p in self.model.initial.items())),
                chunk_size=self.config.chunk_size, conv_kernel=0 if conv is None else conv.shape[1],
                conv_channels=0 if conv is None else conv.shape[0], dtype=str(dtype),
            )
            self._signature_key = key
        return self._signature

    def init_state(self, batch_size: int, device: torch.device | None = None) -> MemoryState:
        """A fresh state: every sample starts from the learned initial weights, zero momentum, nothing pending."""
        device = device or self.to_qkv.weight.device
        weights = {n: p.unsqueeze(0).expand(batch_size, *p.shape) for n, p in self.model.initial.items()}
        dtype = self.to_qkv.weight.dtype
        empty = torch.zeros(batch_size, 0, self.heads, self.dim_head, device=device, dtype=dtype)
        pending = {"q": empty, "k": empty, "v": empty} | {r: empty[..., 0] for r in RATE_NAMES}
        conv = None
        if self.conv_weight is not None:
            conv = torch.zeros(
                batch_size,
                self.conv_weight.shape[1] - 1,
                self.conv_weight.shape[0],
                device=device,
                dtype=dtype,
            )
        return MemoryState(
            weights={n: w.to(device) for n, w in weights.items()},
            momentum={n: torch.zeros_like(w, device=device) for n, w in weights.items()},
            pending=pending,
            conv=conv,
            signature=self.signature(),
        )

    def project(self, x: Tensor, conv_cache: Tensor | None) -> tuple[dict[str, Tensor], Tensor | None]:
        """``x [B, T, D]`` → q, k, v ``[B, T, H, d]`` and rates ``[B, T, H]``, and the new convolution cache."""
        x = self.norm(x)
        qkv = self.to_qkv(x)
        if self.conv_weight is not None:
            conv = causal_conv1d_naive if self.naive else causal_conv1d
            qkv, conv_cache = conv(qkv, self.conv_weight, conv_cache)
        q, k, v = qkv.unflatten(-1, (3, self.heads, -1)).unbind(-3)  # each [B, T, H, d]
        if self.config.qk_norm:
            q, k = F.normalize(F.silu(q), dim=-1), F.normalize(F.silu(k), dim=-1)
        if self.config.value_norm:
            v = F.normalize(v, dim=-1)
        rates = self.rule.rates(x)
        return {"q": q, "k": k, "v": v} | rates._asdict(), conv_cache

    def read(self, x: Tensor, state: MemoryState | None = None) -> Tensor:
        """Read without writing: ``M_W(q(x))`` ``[B, T, D]`` with ``W`` the state's weights (those of the start of
        its current chunk) for every token. The convolution is skipped: its cache belongs to the written stream.
        """
        if state is None:
            state = self.init_state(x.shape[0], x.device)
        else:
            check_state(state, self.signature())
        inner = self.heads * self.dim_head
        q = F.linear(self.norm(x), self.to_qkv.weight[:inner])
        q = _to_rows(q.unflatten(-1, (self.heads, -1)))
        if self.config.qk_norm:
            q = F.normalize(F.silu(q), dim=-1)
        weights = {n: w.flatten(0, 1) for n, w in state.weights.items()}
        y = _from_rows(self.model.functional(weights, q), x.shape[0])
        return self.out_proj(y.to(x.dtype))

    def forward(self, x: Tensor, state: MemoryState | None = None) -> tuple[Tensor, MemoryState]:
        """Read and write the memory for ``x`` ``[B, T, D]``; returns ``y`` ``[B, T, D]`` and the new state."""
        if state is None and self._graphs_apply(x):
            return self._replay(x)
        return self.forward_eager(x, state)

    def _graphs_apply(self, x: Tensor) -> bool:
        """Whether this call runs as CUDA graphs (``config.cuda_graphs``, training on CUDA with gradients)."""
        return self.config.cuda_graphs and x.is_cuda and self.training and torch.is_grad_enabled() and not self.naive

    def _replay(self, x: Tensor) -> tuple[Tensor, MemoryState]:
        """Replay (capturing on first use) the graphs for ``x``'s signature and the autocast state. Parameters
        moved or replaced since a capture change their addresses, which invalidates every capture."""
        from hercules.memory.cuda_graphs import capture_memory

        addresses = tuple(p.data_ptr() for p in self.parameters())
        autocast = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
        key = (tuple(x.shape), x.dtype, x.device, x.requires_grad, autocast, addresses)
        if any(k[-1] != addresses for k in self._graphs):
            self._graphs.clear()
        run = self._graphs.get(key)
        if run is None:
            run = self._graphs[key] = capture_memory(self, x.detach().clone().requires_grad_(x.requires_grad))
        y, state = run(x)
        state.signature = self.signature()
        return y, state

    def forward_eager(self, x: Tensor, state: MemoryState | None = None) -> tuple[Tensor, MemoryState]:
        """:meth:`forward` without CUDA graphs."""
        batch = x.shape[0]
        if state is None:
            state = self.init_state(batch, x.device)
        else:
            check_state(state, self.signature())
            if state.batch_size != batch:
                raise ValueError(f"state is for batch size {state.batch_size} but x has batch size {batch}")
        new, conv_cache = self.project(x, state.conv)
        if state.pending_tokens == 0:  # in the state's dtype, as a concatenation would give (fp32 under autocast)
            seq = {n: t.to(state.pending[n].dtype) for n, t in new.items()}
        else:
            seq = {n: torch.cat([state.pending[n], new[n]], dim=1) for n in new}
        tokens = {n: _to_rows(t) for n, t in seq.items()}
        result = self.rule.update(
            self.model,
            {n: w.flatten(0, 1) for n, w in state.weights.items()},
            {n: s.flatten(0, 1) for n, s in state.momentum.items()},
            tokens["q"],
            tokens["k"],
            tokens["v"],
            Rates(*(tokens[r] for r in RATE_NAMES)),
            self.config.chunk_size,
            naive=self.naive,
            read_from=state.pending_tokens,
            max_grad_norm=self.config.max_grad_norm,
            backend=self.config.backend,
        )
        y = _from_rows(result.y, batch)
        total = seq["q"].shape[1]
        keep = total % self.config.chunk_size
        new_state = MemoryState(
            weights={n: w.unflatten(0, (batch, -1)) for n, w in result.weights.items()},
            momentum={n: s.unflatten(0, (batch, -1)) for n, s in result.momentum.items()},
            pending={n: t[:, total - keep :] for n, t in seq.items()},
            conv=conv_cache,
            signature=self.signature(),
        )
        new_state.stats = self._stats(
            new, new_state, result.surprise, state, wrote=total >= self.config.chunk_size
        )
        return self.out_proj(y.to(x.dtype)), new_state

    @torch.no_grad()
    def _stats(
        self, new: dict[str, Tensor], state: MemoryState, surprise: Tensor, before: MemoryState, wrote: bool
    ) -> dict[str, Tensor]:
        """Diagnostics as detached tensors (no host synchronisation). A call that completed no chunk left the
        weights as they were, so their norms and the last surprise are carried over rather than recomputed
        (this keeps token-by-token decoding cheap)."""
        if new["lr"].shape[1] == 0:  # no tokens: nothing to average, and nothing changed
            return dict(before.stats)
        stats = {"theta": new["lr"].mean(), "eta": new["mom"].mean(), "alpha": new["forget"].mean()}
        if not wrote and "weight_norm" in before.stats:
            return stats | {n: before.stats[n] for n in ("surprise_norm", "weight_norm", "momentum_norm")}
        return stats | {
            "surprise_norm": surprise.mean(),
            "weight_norm": _norm(state.weights),
            "momentum_norm": _norm(state.momentum),
        }
