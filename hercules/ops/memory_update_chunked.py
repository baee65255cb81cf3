"""Fast chunked neural-memory update, equal to :func:`memory_update_naive` in values and gradients.

Within a chunk every gradient is taken at the start weights ``W0``, so the end-of-chunk momentum and weights are
the start values plus weighted sums of the per-token gradients ``g_t``, with scalar weights made of products of η
and (1 − α) (``P^x_{a..b} = Π_{j=a}^{b} x_j``, an empty product is 1)::

    S_n = P^η_{1..n} · S_0 − Σ_t θ_t P^η_{t+1..n} g_t
    M_n = P^{1−α}_{1..n} · M_0 + (Σ_s P^{1−α}_{s+1..n} P^η_{1..s}) · S_0
          − Σ_t θ_t (Σ_{s≥t} P^{1−α}_{s+1..n} P^η_{t+1..s}) g_t

A weighted sum of per-token gradients is the gradient of the weighted loss, Σ_t w_t ∇ℓ_t = J^T(2 w ⊙ (W0(k) − v)),
so both sums come from one forward and one backward pass (in closed form for the built-in memory models, a vmapped
two-cotangent vector-Jacobian product for any other): no per-token copy of the weights is ever formed. Everything
is differentiable, so gradients reach the projections that produce q, k, v, θ, η, α and the initial weights: a
model with a :class:`~hercules.ops.chunk_scan.ChunkKernel` (its backward written out) runs all chunks of a call
as one autograd node (:mod:`hercules.ops.chunk_scan`); any other goes through autograd chunk by chunk
(:class:`_StateUpdate` per weight). The inner sum over ``s`` is a linear recurrence from the end of the chunk
(:func:`linear_scan`), so the coefficients cost O(n log n) per chunk of n tokens, not O(n²).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from hercules.ops.chunk_scan import ChunkKernel, ClipFactors, chunk_scan, increment_norm
from hercules.ops.memory_update_naive import MemoryUpdate, ModelFn, clip_factor

ReadAndGradients = Callable[
    [dict[str, Tensor], Tensor, Tensor, Tensor, Tensor], tuple[Tensor, dict[str, Tensor]]
]
"""``(weights, q, k, v, token_weights [N, m, n]) → (W(q), name → Σ_t w_{:,m,t} ∇_W ‖W(k_t) − v_t‖² [N, m, ...])``."""

GradientNorms = Callable[[dict[str, Tensor], Tensor, Tensor], Tensor]
"""``(weights, k, v) → [N, n]``: the norm of each token's gradient ``∇_W ‖W(k_t) − v_t‖²`` over every weight."""


def cumulative_product(x: Tensor) -> Tensor:
    """Inclusive cumulative product over the last dimension, ``P[.., s] = Π_{j≤s} x_j``.

    ``torch.cumprod`` except on CUDA, where its backward asks the host whether the input holds a zero (a
    synchronisation that CUDA-graph capture forbids): there a doubling scan of ``⌈log₂ n⌉`` multiplications,
    exact with zeros too, and free of synchronisation forward and backward.
    """
    if x.device.type != "cuda":
        return torch.cumprod(x, dim=-1)
    return doubling_cumprod(x)


def doubling_cumprod(x: Tensor) -> Tensor:
    """Hillis–Steele scan: after the step with shift ``s``, ``x_t`` holds the product of the ``2s`` last inputs."""
    n, shift = x.shape[-1], 1
    while shift < n:
        x = torch.cat([x[..., :shift], x[..., shift:] * x[..., :-shift]], dim=-1)
        shift *= 2
    return x


def linear_scan(a: Tensor, b: Tensor) -> Tensor:
    """``h_t = a_t · h_{t−1} + b_t`` over the last dimension, from ``h_{−1} = 0``: a doubling (Hillis–Steele) scan
    of the affine maps ``h ↦ a_t h + b_t``, ``⌈log₂ n⌉`` steps, exact with zeros (no logs or divisions)."""
    n, shift = a.shape[-1], 1
    while shift < n:
        b = torch.cat([b[..., :shift], torch.addcmul(b[..., shift:], a[..., shift:], b[..., :-shift])], dim=-1)
        a = torch.cat([a[..., :shift], a[..., shift:] * a[..., :-shift]], dim=-1)
        shift *= 2
    return b


def _suffix_products(x: Tensor) -> Tensor:
    """``P[.., s] = Π_{j=s+1}^{n} x_j`` (exclusive products from the end, 1 for the last); ``[..., n]``."""
    ones = torch.ones_like(x[..., :1])
    return torch.cat([cumulative_product(x[..., 1:].flip(-1)).flip(-1), ones], dim=-1)


def chunk_coefficients(lr: Tensor, mom: Tensor, forget: Tensor) -> dict[str, Tensor]:
    """Scalar weights of complete chunks (see the module docstring); inputs ``[..., n]``, one chunk per row.

    Returns ``w_s`` and ``w_m`` ``[..., n]`` (gradient weights for momentum and weights), and ``[...]`` factors
    ``eta_all`` (of S_0 in S_n), ``decay_all`` (of M_0 in M_n) and ``s0_in_m`` (of S_0 in M_n).
    """
    keep = 1 - forget
    keep_tail = _suffix_products(keep)  # [..., n]: P^{1−α}_{s+1..n}
    eta_prefix = cumulative_product(mom)  # P^η_{1..s}
    # Σ_{s≥t} P^{1−α}_{s+1..n} P^η_{t+1..s} = R_t, with R_t = P^{1−α}_{t+1..n} + η_{t+1} R_{t+1}: a linear
    # recurrence run from the end (O(n log n), where the sum over a matrix of segment products is O(n²))
    following_eta = torch.cat([torch.zeros_like(mom[..., :1]), mom.flip(-1)[..., :-1]], dim=-1)
    weight_sums = linear_scan(following_eta, keep_tail.flip(-1)).flip(-1)
    return {
        "w_s": lr * _suffix_products(mom),
        "w_m": lr * weight_sums,
        "eta_all": eta_prefix[..., -1],
        "decay_all": keep[..., 0] * keep_tail[..., 0],
        "s0_in_m": (keep_tail * eta_prefix).sum(-1),
    }


def weighted_gradients(
    model_fn: ModelFn, weights: dict[str, Tensor], k: Tensor, v: Tensor, token_weights: Tensor
) -> dict[str, Tensor]:
    """``Σ_t w_{m,t} ∇_W ‖W(k_t) − v_t‖²`` for ``m`` weightings ``[N, m, n]`` → ``name → [N, m, ...]``.

    Works for any memory model through ``torch.func``; built-in models provide a faster closed form.
    """
    pred, vjp_fn = torch.func.vjp(lambda w: model_fn(w, k), weights)
    cotangents = 2 * token_weights.movedim(1, 0).unsqueeze(-1) * (pred - v).unsqueeze(0)
    (grads,) = torch.func.vmap(vjp_fn)(cotangents)
    return {n: g.movedim(0, 1) for n, g in grads.items()}


class _StateUpdate(torch.autograd.Function):
    """A chunk's end state from its start and its weighted gradient sums, with the backward written out.

    ``W' = Π(1−α)·W + s0_in_m·S + G[:, 0]`` and ``S' = Πη·S + G[:, 1]``, the scalars per row ``[N, 3]``. Autograd
    over three broadcast multiply-adds would run about twice the kernels (a reduction per broadcast scalar, a
    zero-filled buffer per slice of ``G``); this is one node forward and one backward.
    """

    @staticmethod
    def forward(ctx, w: Tensor, s: Tensor, g: Tensor, scalars: Tensor) -> tuple[Tensor, Tensor]:
        c = scalars.view(*scalars.shape, *([1] * (w.dim() - 1))).unbind(1)
        ctx.save_for_backward(w, s, scalars)
        return torch.addcmul(torch.addcmul(g[:, 0], c[0], w), c[1], s), torch.addcmul(g[:, 1], c[2], s)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_w: Tensor | None, grad_s: Tensor | None):
        w, s, scalars = ctx.saved_tensors
        grad_w = torch.zeros_like(w) if grad_w is None else grad_w
        grad_s = torch.zeros_like(s) if grad_s is None else grad_s
        c = scalars.view(*scalars.shape, *([1] * (w.dim() - 1))).unbind(1)
        dots = None
        if ctx.needs_input_grad[3]:  # the scalars' gradients (constant for rules without momentum or forgetting)
            pairs = ((grad_w, w), (grad_w, s), (grad_s, s))
            dots = torch.stack([torch.linalg.vecdot(a.flatten(1), b.flatten(1)) for a, b in pairs], dim=1)
        return (
            grad_w * c[0],
            torch.addcmul(grad_w * c[1], grad_s, c[2]),
            torch.stack([grad_w, grad_s], 1),
            dots,
        )


def per_token_gradient_norms(model_fn: ModelFn, weights: dict[str, Tensor], k: Tensor, v: Tensor) -> Tensor:
    """:data:`GradientNorms` for any ``model_fn`` through ``torch.func`` (one cotangent per token; the built-in
    models have closed forms)."""
    pred, vjp_fn = torch.func.vjp(lambda w: model_fn(w, k), weights)
    n = k.shape[1]
    one_hot = torch.eye(n, dtype=pred.dtype, device=pred.device)[:, None, :, None]  # [n, 1, n, 1]
    (grads,) = torch.func.vmap(vjp_fn)(2 * one_hot * (pred - v).unsqueeze(0))
    return torch.stack([g.flatten(2).pow(2).sum(-1) for g in grads.values()]).sum(0).sqrt().transpose(0, 1)


def clipping(norms: GradientNorms, max_grad_norm: float | None) -> ClipFactors | None:
    """The per-token clipping factors at a chunk's start weights (``None`` when clipping is off)."""
    if max_grad_norm is None:
        return None

    @torch.no_grad()
    def factors(weights: dict[str, Tensor], k: Tensor, v: Tensor) -> Tensor:
        detached = {n: w.detach() for n, w in weights.items()}
        norm = norms(detached, k.detach(), v.detach())
        return clip_factor(norm.to(torch.promote_types(norm.dtype, torch.float32)), max_grad_norm).to(k.dtype)

    return factors


def generic_read_and_gradients(model_fn: ModelFn) -> ReadAndGradients:
    """A :data:`ReadAndGradients` for any ``model_fn``: a plain read plus :func:`weighted_gradients`."""

    def read_and_gradients(weights, q, k, v, token_weights):
        return model_fn(weights, q), weighted_gradients(model_fn, weights, k, v, token_weights)

    return read_and_gradients


def _chunks_by_autograd(read_and_gradients: ReadAndGradients, W, S, q, k, v, token_weights, coef, clip=None):
    """The chunk loop through autograd, chunk by chunk, for models without a :class:`ChunkKernel`."""
    W, S, reads = dict(W), dict(S), []
    scalars = torch.stack([coef["decay_all"], coef["s0_in_m"], coef["eta_all"]], dim=-1)
    # Split into chunks with unbind (its backward is one stack) rather than slicing per chunk (whose backward
    # would write a zero-filled [N, L, ...] tensor per chunk).
    for chunk in zip(*(x.unbind(1) for x in (q, k, v, token_weights, scalars)), strict=True):
        tw = chunk[3] if clip is None else chunk[3] * clip(W, chunk[1], chunk[2]).unsqueeze(1)
        y, grads = read_and_gradients(W, *chunk[:3], tw)
        reads.append(y)
        for n in W:
            W[n], S[n] = _StateUpdate.apply(W[n], S[n], grads[n], chunk[4])
    return torch.stack(reads, 1), W, S, increment_norm(grads)


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
    read_from: int = 0,
    read_and_gradients: ReadAndGradients | None = None,
    chunk_kernel: ChunkKernel | None = None,
    max_grad_norm: float | None = None,
    gradient_norms: GradientNorms | None = None,
) -> MemoryUpdate:
    """Chunked memory update; same arguments and result as :func:`memory_update_naive`.

    ``read_and_gradients`` (optional) computes a chunk's reads and weighted gradients together, e.g. in closed
    form for a known model; by default they come from ``model_fn`` through ``torch.func``. With a
    ``chunk_kernel`` (the same computation with its backward written out) all complete chunks run as one autograd
    node, and ``read_and_gradients`` is not used. ``max_grad_norm`` clips each token's gradient as the naive
    reference does, with the norms from ``gradient_norms`` (by default through ``torch.func``).
    """
    rows, length = q.shape[:2]
    full = length // chunk_size
    W, S = dict(weights), dict(momentum)
    reads = []
    surprise = q.new_zeros(rows)
    if full:
        # The coefficients depend on the rates only, so they are computed for all chunks at once, outside the
        # sequential loop.
        chunked = lambda x: x[:, : full * chunk_size].unflatten(1, (full, chunk_size))  # noqa: E731
        coef = chunk_coefficients(*(chunked(x) for x in (lr, mom, forget)))
        # negated weights give −Σ w g directly; [N, F, 2, c], the weights' weighting first
        token_weights = torch.stack([-coef["w_m"], -coef["w_s"]], dim=2)
        qkv = (chunked(q), chunked(k), chunked(v))
        norms = gradient_norms or (lambda w, k, v: per_token_gradient_norms(model_fn, w, k, v))
        clip = clipping(norms, max_grad_norm)
        if chunk_kernel is not None:
            y, W, S, surprise = chunk_scan(chunk_kernel, W, S, *qkv, token_weights, coef, clip)
        else:
            read_and_gradients = read_and_gradients or generic_read_and_gradients(model_fn)
            y, W, S, surprise = _chunks_by_autograd(read_and_gradients, W, S, *qkv, token_weights, coef, clip)
        reads.append(y.flatten(1, 2)[:, read_from:])
    if full * chunk_size < length:  # the unfinished chunk is read, not written
        reads.append(model_fn(W, q[:, max(full * chunk_size, read_from) :]))
    y = torch.cat(reads, dim=1) if reads else q.new_zeros(rows, 0, v.shape[-1])
    return MemoryUpdate(y, W, S, surprise)
