"""Fast chunked neural-memory update, equal to :func:`memory_update_naive` in values and gradients.

Within a chunk every gradient is taken at the start weights ``W0``, so the end-of-chunk momentum and weights are
the start values plus weighted sums of the per-token gradients ``g_t``, with scalar weights made of products of η
and (1 − α) (``P^x_{a..b} = Π_{j=a}^{b} x_j``, an empty product is 1)::

    S_n = P^η_{1..n} · S_0 − Σ_t θ_t P^η_{t+1..n} g_t
    M_n = P^{1−α}_{1..n} · M_0 + (Σ_s P^{1−α}_{s+1..n} P^η_{1..s}) · S_0
          − Σ_t θ_t (Σ_{s≥t} P^{1−α}_{s+1..n} P^η_{t+1..s}) g_t

A weighted sum of per-token gradients is the gradient of the weighted loss, Σ_t w_t ∇ℓ_t = J^T(2 w ⊙ (W0(k) − v)),
so both sums come from one forward and one (vmapped, two-cotangent) vector-Jacobian product: no per-token copy of
the weights is ever formed. Everything is ordinary differentiable torch, so gradients reach the projections
that produce q, k, v, θ, η, α and the initial weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hercules.ops.memory_update_naive import MemoryUpdate, ModelFn, _rows


def _segment_products(x: Tensor) -> Tensor:
    """``P[.., t, s] = Π_{j=t+1}^{s} x_j`` for ``s ≥ t`` and 0 for ``s < t``; ``x`` ``[N, n]`` → ``[N, n, n]``.

    Built with a cumulative product over a masked matrix (exact with zeros, no logs or divisions).
    """
    n = x.shape[-1]
    idx = torch.arange(n, device=x.device)
    later = idx[None, :] > idx[:, None]
    factors = torch.where(later, x[:, None, :], torch.ones((), dtype=x.dtype, device=x.device))
    return torch.cumprod(factors, dim=-1) * (~later.T).to(x.dtype)


def chunk_coefficients(lr: Tensor, mom: Tensor, forget: Tensor) -> dict[str, Tensor]:
    """Scalar weights of one complete chunk (see the module docstring); inputs ``[N, n]``.

    Returns ``w_s`` and ``w_m`` ``[N, n]`` (gradient weights for momentum and weights), and ``[N]`` factors
    ``eta_all`` (of S_0 in S_n), ``decay_all`` (of M_0 in M_n) and ``s0_in_m`` (of S_0 in M_n).
    """
    keep = 1 - forget
    eta_seg = _segment_products(mom)
    keep_tail = _segment_products(keep)[..., -1]  # [N, n]: P^{1−α}_{s+1..n}
    eta_prefix = torch.cumprod(mom, dim=-1)  # P^η_{1..s}
    return {
        "w_s": lr * eta_seg[..., -1],
        "w_m": lr * (eta_seg @ keep_tail.unsqueeze(-1)).squeeze(-1),
        "eta_all": eta_prefix[..., -1],
        "decay_all": torch.cumprod(keep, dim=-1)[..., -1],
        "s0_in_m": (keep_tail * eta_prefix).sum(-1),
    }


def weighted_gradients(
    model_fn: ModelFn, weights: dict[str, Tensor], k: Tensor, v: Tensor, token_weights: Tensor
) -> dict[str, Tensor]:
    """``Σ_t w_{m,t} ∇_W ‖W(k_t) − v_t‖²`` for each of ``m`` weightings ``[m, N, n]`` → ``name → [m, N, ...]``."""
    pred, vjp_fn = torch.func.vjp(lambda w: model_fn(w, k), weights)
    cotangents = 2 * token_weights.unsqueeze(-1) * (pred - v).unsqueeze(0)
    (grads,) = torch.func.vmap(vjp_fn)(cotangents)
    return grads


def memory_update_chunked(
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
) -> MemoryUpdate:
    """Chunked memory update; same arguments and result as :func:`memory_update_naive`."""
    length = q.shape[1]
    W, S = dict(weights), dict(momentum)
    reads = []
    surprise = q.new_zeros(q.shape[0])
    for start in range(0, length, chunk_size):
        end = min(start + chunk_size, length)
        reads.append(model_fn(W, q[:, start:end]))
        if end - start < chunk_size:
            break
        coef = chunk_coefficients(lr[:, start:end], mom[:, start:end], forget[:, start:end])
        token_weights = torch.stack([coef["w_s"], coef["w_m"]])
        grads = weighted_gradients(model_fn, W, k[:, start:end], v[:, start:end], token_weights)
        new_S = {n: _rows(coef["eta_all"], s) * s - grads[n][0] for n, s in S.items()}
        W = {
            n: _rows(coef["decay_all"], w) * w + _rows(coef["s0_in_m"], w) * S[n] - grads[n][1]
            for n, w in W.items()
        }
        S = new_S
        surprise = torch.stack([g[0].flatten(1).pow(2).sum(-1) for g in grads.values()]).sum(0).sqrt()
    y = torch.cat(reads, dim=1) if reads else q.new_zeros(q.shape[0], 0, v.shape[-1])
    return MemoryUpdate(y, W, S, surprise)
