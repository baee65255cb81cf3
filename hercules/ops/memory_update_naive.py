"""Token-by-token reference of the neural-memory update: the definitions, followed literally.

Shapes: ``N`` is batch × heads (every row is an independent memory), ``L`` tokens, ``d`` the head size.
A memory model is a pure function ``model_fn(weights, x)`` with ``weights`` a dict of ``[N, ...]`` tensors and
``x`` ``[N, n, d]``.

Chunk semantics (chunk size ``c``): the tokens of chunk ``i`` read the memory as it was at the end of chunk
``i − 1``; their gradients are taken at those same start-of-chunk weights ``W0``; then, token by token and in
order::

    S_t = η_t · S_{t−1} − θ_t · ∇ℓ(W0; k_t, v_t)        ℓ(W; k, v) = ‖W(k) − v‖²
    M_t = (1 − α_t) · M_{t−1} + S_t

A trailing chunk with fewer than ``c`` tokens is read but not applied: its tokens wait (in the layer's state)
until the chunk is complete.

Per-token gradient clipping (``max_grad_norm`` τ): each token's gradient enters as ``f_t · ∇ℓ(W0; k_t, v_t)``
with ``f_t = min(1, τ / ‖∇ℓ(W0; k_t, v_t)‖)``, the norm taken over all of the memory's weights. ``f_t`` is a
constant for the outer backward (as in ordinary gradient clipping): it bounds every token's step by ``θ_t τ``
whatever the weights, keys and values, which is what keeps the inner loop finite (docs/concepts/memory.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

ModelFn = Callable[[dict[str, Tensor], Tensor], Tensor]


class MemoryUpdate(NamedTuple):
    """Result of a memory update over a token sequence.

    Attributes:
        y: reads ``[N, L, d]``, token ``t`` read with the weights of the start of its chunk.
        weights: memory weights after the last complete chunk, ``name → [N, ...]``.
        momentum: momentum (surprise) after the last complete chunk, ``name → [N, ...]``.
        surprise: ``[N]`` norm of the gradient term that entered the momentum in the last complete chunk
            (``‖S_end − (Πη)·S_start‖``), zero when no chunk was complete.
    """

    y: Tensor
    weights: dict[str, Tensor]
    momentum: dict[str, Tensor]
    surprise: Tensor


def differentiable(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """Weights that ``torch.autograd.grad`` can differentiate: the same tensors, or detached leaves if not tracked."""
    return {n: w if w.requires_grad else w.detach().requires_grad_() for n, w in weights.items()}


def _rows(x: Tensor, like: Tensor) -> Tensor:
    """View a per-row rate ``[N]`` so that it broadcasts against a weight ``[N, ...]``."""
    return x.reshape(x.shape[0], *([1] * (like.dim() - 1)))


def token_gradient(model_fn: ModelFn, weights: dict[str, Tensor], k: Tensor, v: Tensor) -> dict[str, Tensor]:
    """∇_W ‖W(k) − v‖² for each row, with ``k, v`` ``[N, 1, d]``; differentiable when the graph is kept."""
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        w = differentiable(weights)
        loss = (model_fn(w, k) - v).pow(2).sum()
        grads = torch.autograd.grad(loss, list(w.values()), create_graph=keep_graph)
    return dict(zip(w.keys(), grads, strict=True))


def clip_factor(norm: Tensor, max_grad_norm: float | None) -> Tensor:
    """``min(1, τ / norm)`` elementwise, detached (1 where ``τ`` is ``None`` or the norm is 0)."""
    norm = norm.detach()
    if max_grad_norm is None:
        return torch.ones_like(norm)
    return (max_grad_norm / norm.clamp_min(torch.finfo(norm.dtype).tiny)).clamp(max=1.0)


def gradient_norm(grads: dict[str, Tensor]) -> Tensor:
    """``[N]`` norm of one token's gradient over every weight (``name → [N, ...]``)."""
    return torch.stack([g.flatten(1).pow(2).sum(-1) for g in grads.values()]).sum(0).sqrt()


def _surprise(momentum: dict[str, Tensor], start: dict[str, Tensor], eta_prod: Tensor) -> Tensor:
    """The norm of the chunk's momentum increment, ``‖S_end − (Πη)·S_start‖`` over every weight."""
    return gradient_norm({n: s - _rows(eta_prod, s) * start[n] for n, s in momentum.items()})


def memory_update_naive(
    model_fn: ModelFn,
    weights: dict[str, Tensor],
    momentum: dict[str, Tensor],
    q: Tensor,
    k: Tensor,
    v: Tensor,
    lr: Tensor,
    mom: Tensor,
    forget: Tensor,
    chunk_size: int,
    read_from: int = 0,
    max_grad_norm: float | None = None,
) -> MemoryUpdate:
    """Reference memory update over ``L`` tokens that start at a chunk boundary.

    Args:
        model_fn: the memory model, ``(weights, x [N, n, d]) → [N, n, d]``.
        weights: start weights, ``name → [N, ...]``.
        momentum: start momentum, same shapes.
        q: queries ``[N, L, d]``.
        k: keys ``[N, L, d]``.
        v: values ``[N, L, d]``.
        lr: θ per token, ``[N, L]``.
        mom: η per token, ``[N, L]`` (0 switches momentum off).
        forget: α per token, ``[N, L]`` (0 switches forgetting off).
        chunk_size: c ≥ 1.
        read_from: read only tokens ``t ≥ read_from`` (earlier ones were read by an earlier call); ``y`` then
            holds ``L − read_from`` tokens.
        max_grad_norm: τ of the per-token gradient clipping (module docstring); ``None`` switches it off.
    """
    length = q.shape[1]
    W, S = dict(weights), dict(momentum)
    reads = []
    surprise = q.new_zeros(q.shape[0])
    for start in range(0, length, chunk_size):
        end = min(start + chunk_size, length)
        W0 = W
        reads.extend(model_fn(W0, q[:, t : t + 1]) for t in range(max(start, read_from), end))
        if end - start < chunk_size:
            break
        S_start, eta_prod = S, torch.ones_like(surprise)
        for t in range(start, end):
            g = token_gradient(model_fn, W0, k[:, t : t + 1], v[:, t : t + 1])
            if max_grad_norm is not None:
                f = clip_factor(gradient_norm(g), max_grad_norm)
                g = {n: _rows(f, x) * x for n, x in g.items()}
            S = {n: _rows(mom[:, t], s) * s - _rows(lr[:, t], s) * g[n] for n, s in S.items()}
            W = {n: _rows(1 - forget[:, t], w) * w + S[n] for n, w in W.items()}
            eta_prod = eta_prod * mom[:, t]
        surprise = _surprise(S, S_start, eta_prod)
    y = torch.cat(reads, dim=1) if reads else q.new_zeros(q.shape[0], 0, v.shape[-1])
    return MemoryUpdate(y, W, S, surprise)
