"""The chunk loop of the fast memory update as one autograd node, for memory models whose chunk step has its
backward written out (a :class:`ChunkKernel`).

:func:`~hercules.ops.memory_update_chunked.memory_update_chunked` calls it; its reference is the same function's
per-chunk autograd loop and, through it, :func:`~hercules.ops.memory_update_naive.memory_update_naive`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import NamedTuple

import torch
from torch import Tensor


class ChunkKernel(NamedTuple):
    """A :data:`~hercules.ops.memory_update_chunked.ReadAndGradients` with its backward written out, which lets the
    whole chunk loop run as one autograd node (:class:`_ChunkScan`) instead of a few dozen per chunk.

    ``forward(weights, q, k, v, token_weights) → (y, grads, saved)``: the reads and weighted gradient sums, and a
    tuple of tensors for the backward. ``backward(weights, q, k, v, token_weights, saved, grad_y, grad_grads) →
    (grad_weights, grad_q, grad_k, grad_v, grad_token_weights)``: the vector-Jacobian product of that forward,
    with ``grad_grads`` and ``grad_weights`` keyed like ``weights``.
    """

    forward: Callable[..., tuple[Tensor, dict[str, Tensor], tuple[Tensor, ...]]]
    backward: Callable[..., tuple[dict[str, Tensor], Tensor, Tensor, Tensor, Tensor]]


ClipFactors = Callable[[dict[str, Tensor], Tensor, Tensor], Tensor]
"""``(weights, k, v) → [N, n]``: each token's gradient-clipping factor at a chunk's start weights, detached
(:func:`~hercules.ops.memory_update_naive.clip_factor` of the per-token gradient norms)."""


class _ChunkScan(torch.autograd.Function):
    """Every complete chunk of a call as one autograd node, for a memory model with a :class:`ChunkKernel`.

    The state of each weight is held as one tensor ``X = [W; S]`` ``[N, 2, ...]`` and a chunk's end state is one
    batched product, ``X' = A X + G`` with ``A = [[Π(1−α), s0_in_m], [0, Πη]]`` per row and ``G`` the kernel's
    weighted gradient sums ``[N, 2, ...]`` (weights' weighting first). Backward: the same loop in reverse,
    ``∂X = Aᵀ ∂X' + [∂W from the kernel; 0]``, ``∂A = ∂X' Xᵀ`` and ``∂G = ∂X'`` into the kernel's backward.

    Inputs: chunked ``q, k, v`` ``[N, F, c, d]``, token weights ``[N, F, 2, c]``, ``A`` ``[N, F, 2, 2]``, then
    each weight's start state ``X``; outputs: the reads ``[N, F, c, d]``, each end state, and the surprise (the
    norm of the last chunk's momentum increment, not differentiable).
    """

    @staticmethod
    def forward(ctx, kernel: ChunkKernel, clip: ClipFactors | None, names: tuple[str, ...], q, k, v, token_weights,
                transition, *states):
        y, states, surprise, saved = _scan(
            kernel, clip, names, q, k, v, token_weights, transition, states, keep=True
        )
        ctx.kernel, ctx.names, ctx.per_chunk, ctx.clip = kernel, names, len(saved) // q.shape[1], clip is not None
        device = q.device.type
        ctx.autocast = (device, torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.save_for_backward(q, k, v, token_weights, transition, *saved)
        ctx.mark_non_differentiable(surprise)
        return y, *states, surprise

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y, *grad_states):
        q, k, v, token_weights, transition, *saved = ctx.saved_tensors
        names, count = ctx.names, len(ctx.names)
        dX = dict(zip(names, grad_states[:count], strict=True))
        # written chunk by chunk into their place (a list stacked at the end would hold them twice at the peak)
        dq, dk, dv, dtw = (torch.empty_like(t) for t in (q, k, v, token_weights))
        dA = torch.empty_like(transition) if ctx.needs_input_grad[7] else None
        device, autocast, dtype = ctx.autocast
        for i in reversed(range(q.shape[1])):
            chunk = saved[i * ctx.per_chunk : (i + 1) * ctx.per_chunk]
            X = dict(zip(names, chunk[:count], strict=True))
            A = transition[:, i]
            kept, tw = chunk[count:], token_weights[:, i]
            if ctx.clip:  # the clipping factors (last of a chunk's saved tensors) are constants
                kept, factors = kept[:-1], kept[-1].unsqueeze(1)
                tw = tw * factors
            with torch.autocast(device, dtype=dtype) if autocast else nullcontext():  # as its forward computed
                gW, gq, gk, gv, gtw = ctx.kernel.backward(
                    {n: x[:, 0] for n, x in X.items()}, q[:, i], k[:, i], v[:, i], tw,
                    tuple(kept), grad_y[:, i], dX,
                )
            if ctx.clip:
                gtw = gtw * factors
            with torch.autocast(device, enabled=False) if autocast else nullcontext():  # the state's precision
                if dA is not None:
                    dA[:, i] = sum(torch.bmm(dX[n].flatten(2), X[n].flatten(2).transpose(1, 2)) for n in names)
                previous = {}
                for n in names:
                    d = torch.bmm(A.transpose(1, 2).to(dX[n].dtype), dX[n].flatten(2)).view_as(dX[n])
                    d[:, 0] += gW[n]
                    previous[n] = d
            dX = previous
            dq[:, i], dk[:, i], dv[:, i], dtw[:, i] = gq, gk, gv, gtw
        return None, None, None, dq, dk, dv, dtw, dA, *dX.values()


def _scan(kernel: ChunkKernel, clip: ClipFactors | None, names, q, k, v, token_weights, transition, states,
          keep: bool):
    """:class:`_ChunkScan`'s forward loop; with ``keep`` it also returns each chunk's start states and the kernel's
    saved tensors, then its clipping factors (without, a long sequence read under ``no_grad`` holds one chunk's
    state at a time)."""
    X = dict(zip(names, states, strict=True))
    device = q.device.type
    autocast = torch.is_autocast_enabled(device)
    reads, saved = [], []
    for i in range(q.shape[1]):
        W = {n: x[:, 0] for n, x in X.items()}
        tw, factors = token_weights[:, i], None
        if clip is not None:
            factors = clip(W, k[:, i], v[:, i])
            tw = tw * factors.unsqueeze(1)
        y, grads, kept = kernel.forward(W, q[:, i], k[:, i], v[:, i], tw)
        reads.append(y)
        if keep:
            saved += [*X.values(), *kept, *(() if factors is None else (factors,))]
        X = {n: _advance(x, transition[:, i], grads[n], device, autocast) for n, x in X.items()}
    surprise = increment_norm(grads)
    return torch.stack(reads, 1), tuple(X.values()), surprise, saved


def increment_norm(grads: dict[str, Tensor]) -> Tensor:
    """The surprise of a chunk: the norm ``[N]`` of its momentum increment, over every weight, from the weighted
    gradient sums ``name → [N, 2, ...]`` (the momentum's weighting second), in float32 whatever their dtype."""
    return torch.stack([g[:, 1].flatten(1).float().pow(2).sum(-1) for g in grads.values()]).sum(0).sqrt()


def _advance(x: Tensor, transition: Tensor, grads: Tensor, device: str, autocast: bool) -> Tensor:
    """``X' = A X + G`` for a state ``[N, 2, ...]``, in the state's precision (outside autocast)."""
    if autocast:
        with torch.autocast(device, enabled=False):
            return _advance(x, transition, grads, device, False)
    out = torch.baddbmm(grads.flatten(2).to(x.dtype), transition.to(x.dtype), x.flatten(2))
    return out.view_as(x)


def chunk_scan(
    kernel: ChunkKernel, W: dict[str, Tensor], S: dict[str, Tensor], q: Tensor, k: Tensor, v: Tensor,
    token_weights: Tensor, coef: dict[str, Tensor], clip: ClipFactors | None = None,
) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor], Tensor]:
    """All complete chunks as one :class:`_ChunkScan` node (its forward alone where nothing needs gradients).

    ``W``, ``S``: start weights and momenta ``name → [N, ...]``; ``q, k, v`` ``[N, F, c, d]``; token weights
    ``[N, F, 2, c]``; ``coef``: the chunk coefficients (``[N, F]`` each) of
    :func:`~hercules.ops.memory_update_chunked.chunk_coefficients`; ``clip``: the per-token gradient clipping, if
    any. Returns the reads ``[N, F, c, d]``, the end
    weights and momenta, and the surprise ``[N]``.
    """
    names = tuple(W)
    eta = coef["eta_all"]
    transition = torch.stack([coef["decay_all"], coef["s0_in_m"], torch.zeros_like(eta), eta], -1).unflatten(-1, (2, 2))
    args = (q, k, v, token_weights, transition)
    states = tuple(torch.stack([W[n], S[n]], dim=1) for n in names)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (*args, *states)):
        y, *states, surprise = _ChunkScan.apply(kernel, clip, names, *args, *states)
    else:
        y, states, surprise, _ = _scan(kernel, clip, names, *args, states, keep=False)
    ends = dict(zip(names, (x.unbind(1) for x in states), strict=True))
    return y, {n: x[0] for n, x in ends.items()}, {n: x[1] for n, x in ends.items()}, surprise
