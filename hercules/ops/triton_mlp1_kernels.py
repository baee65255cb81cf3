"""Triton kernels of the whole chunk loop for a one-matrix memory ``M(x) = [x +] x W`` (the ``linear`` memory,
and the ``mlp`` memory of depth 1), forward and backward; the layout and the conventions are those of
:mod:`hercules.ops.triton_mlp_kernels`, with one state ``W, S`` ``[d, d]``.

Per chunk, forward: ``y = [q +] q W``, ``δ = [k +] k W − v``, ``G[m] = kᵀ diag(u_m) δ``; backward, with
``∂G[m]`` the end state's gradients ``∂W', ∂S'``: ``∂u_m = rowsum((δ ∂G[m]ᵀ) ⊙ k)``, ``∂δ = Σ_m u_m ⊙ (k ∂G[m])``,
``∂W = qᵀ ∂y + kᵀ ∂δ``, ``∂q = ∂y Wᵀ [+ ∂y]``, ``∂k = ∂δ Wᵀ + Σ_m u_m ⊙ (δ ∂G[m]ᵀ) [+ ∂δ]``, ``∂v = −∂δ``.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _chunk_forward(q, k, v, W, RESIDUAL: tl.constexpr, PREC: tl.constexpr):
    y = tl.dot(q, W, input_precision=PREC)
    delta = tl.dot(k, W, input_precision=PREC) - v
    if RESIDUAL:
        y += q
        delta += k
    return y, delta


@triton.jit
def _token_weights(tw_ptr, chunk, C, tc, mc, k, delta, tau, CLIP: tl.constexpr):
    """``u = 2 f w`` for both weightings, with the clip factor ``f`` (``‖g_t‖ = 2 ‖k_t‖ ‖δ_t‖``), and ``2 f``."""
    f = tl.sum(k * 0.0, 1) + 2.0
    if CLIP:
        norm = 2.0 * tl.sqrt(tl.sum(k * k, 1) * tl.sum(delta * delta, 1))
        f = 2.0 * tl.where(norm > tau, tau / tl.maximum(norm, 1e-30), 1.0)
    u_m = f * tl.load(tw_ptr + chunk * 2 * C + tc, mask=mc, other=0.0).to(tl.float32)
    u_s = f * tl.load(tw_ptr + chunk * 2 * C + C + tc, mask=mc, other=0.0).to(tl.float32)
    return u_m, u_s, f


@triton.jit(do_not_specialize=["F"])  # one compilation for any number of chunks
def mlp1_forward_kernel(
    q_ptr, k_ptr, v_ptr, tw_ptr, a_ptr, w_ptr, s_ptr, y_ptr, saved_w, saved_s, surprise_ptr, F, C, D, tau,
    BC: tl.constexpr, BD: tl.constexpr, RESIDUAL: tl.constexpr, CLIP: tl.constexpr, SAVE: tl.constexpr,
    PREC: tl.constexpr,
):
    """Forward over ``F`` chunks of one row (see :func:`~hercules.ops.triton_mlp_kernels.mlp2_forward_kernel`)."""
    row = tl.program_id(0).to(tl.int64)
    td = tl.arange(0, BD)
    md = td < D
    dd = td[:, None] * D + td[None, :]
    dd_m = md[:, None] & md[None, :]
    state = row * D * D
    W = tl.load(w_ptr + state + dd, mask=dd_m, other=0.0).to(tl.float32)
    S = tl.load(s_ptr + state + dd, mask=dd_m, other=0.0).to(tl.float32)
    Gs = W * 0.0
    for i in range(F):
        chunk = row * F + i
        if SAVE:
            tl.store(saved_w + chunk * D * D + dd, W, mask=dd_m)
            tl.store(saved_s + chunk * D * D + dd, S, mask=dd_m)
        tl.store(w_ptr + state + dd, W, mask=dd_m)  # the token loop loads it where it is used (see mlp2)
        tl.debug_barrier()
        Gm = W * 0.0
        Gs = W * 0.0
        for t0 in range(0, C, BC):  # BC tokens at a time: the tiles do not grow with the chunk size
            tc = t0 + tl.arange(0, BC)
            mc = tc < C
            cd_m = mc[:, None] & md[None, :]
            tok = chunk * C * D + tc[:, None] * D + td[None, :]
            q = tl.load(q_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            k = tl.load(k_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            v = tl.load(v_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            Wc = tl.load(w_ptr + state + dd, mask=dd_m, other=0.0)
            y, delta = _chunk_forward(q, k, v, Wc, RESIDUAL, PREC)
            tl.store(y_ptr + tok, y.to(y_ptr.dtype.element_ty), mask=cd_m)
            u_m, u_s, f = _token_weights(tw_ptr, chunk, C, tc, mc, k, delta, tau, CLIP)
            Gm += tl.dot(tl.trans(k * u_m[:, None]), delta, input_precision=PREC)
            Gs += tl.dot(tl.trans(k * u_s[:, None]), delta, input_precision=PREC)
        tl.debug_barrier()
        decay = tl.load(a_ptr + chunk * 4).to(tl.float32)
        s0_in_m = tl.load(a_ptr + chunk * 4 + 1).to(tl.float32)
        eta = tl.load(a_ptr + chunk * 4 + 3).to(tl.float32)
        W = decay * W + s0_in_m * S + Gm
        S = eta * S + Gs
    tl.store(w_ptr + state + dd, W, mask=dd_m)
    tl.store(s_ptr + state + dd, S, mask=dd_m)
    tl.store(surprise_ptr + row, tl.sqrt(tl.sum(tl.sum(Gs * Gs, 1), 0)))


@triton.jit(do_not_specialize=["F"])  # one compilation for any number of chunks
def mlp1_backward_kernel(
    q_ptr, k_ptr, v_ptr, tw_ptr, a_ptr, saved_w, saved_s, gy_ptr, dw_ptr, ds_ptr, dq_ptr, dk_ptr, dv_ptr,
    dtw_ptr, da_ptr, F, C, D, tau,
    BC: tl.constexpr, BD: tl.constexpr, RESIDUAL: tl.constexpr, CLIP: tl.constexpr, PREC: tl.constexpr,
):
    """Backward over ``F`` chunks of one row, in reverse (see
    :func:`~hercules.ops.triton_mlp_kernels.mlp2_backward_kernel`)."""
    row = tl.program_id(0).to(tl.int64)
    td = tl.arange(0, BD)
    md = td < D
    dd = td[:, None] * D + td[None, :]
    dd_m = md[:, None] & md[None, :]
    state = row * D * D
    dW = tl.load(dw_ptr + state + dd, mask=dd_m, other=0.0).to(tl.float32)
    dS = tl.load(ds_ptr + state + dd, mask=dd_m, other=0.0).to(tl.float32)
    for j in range(F):
        chunk = row * F + (F - 1 - j)
        W = tl.load(saved_w + chunk * D * D + dd, mask=dd_m, other=0.0)
        S = tl.load(saved_s + chunk * D * D + dd, mask=dd_m, other=0.0)
        tl.store(da_ptr + chunk * 4, tl.sum(tl.sum(dW * W, 1), 0))
        tl.store(da_ptr + chunk * 4 + 1, tl.sum(tl.sum(dW * S, 1), 0))
        tl.store(da_ptr + chunk * 4 + 2, tl.sum(tl.sum(dS * W, 1), 0))
        tl.store(da_ptr + chunk * 4 + 3, tl.sum(tl.sum(dS * S, 1), 0))
        tl.store(dw_ptr + state + dd, dW, mask=dd_m)
        tl.store(ds_ptr + state + dd, dS, mask=dd_m)
        tl.debug_barrier()
        gW = W * 0.0
        for t0 in range(0, C, BC):
            tc = t0 + tl.arange(0, BC)
            mc = tc < C
            cd_m = mc[:, None] & md[None, :]
            tok = chunk * C * D + tc[:, None] * D + td[None, :]
            q = tl.load(q_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            k = tl.load(k_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            v = tl.load(v_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            gy = tl.load(gy_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            W = tl.load(saved_w + chunk * D * D + dd, mask=dd_m, other=0.0)
            eW = tl.load(dw_ptr + state + dd, mask=dd_m, other=0.0)
            eS = tl.load(ds_ptr + state + dd, mask=dd_m, other=0.0)
            y, delta = _chunk_forward(q, k, v, W, RESIDUAL, PREC)
            u_m, u_s, f = _token_weights(tw_ptr, chunk, C, tc, mc, k, delta, tau, CLIP)
            tm = tl.dot(delta, tl.trans(eW), input_precision=PREC)
            ts = tl.dot(delta, tl.trans(eS), input_precision=PREC)
            du_m = tl.sum(tm * k, 1)
            du_s = tl.sum(ts * k, 1)
            dd_ = u_m[:, None] * tl.dot(k, eW, input_precision=PREC) + u_s[:, None] * tl.dot(k, eS, input_precision=PREC)
            gW += tl.dot(tl.trans(q), gy, input_precision=PREC) + tl.dot(tl.trans(k), dd_, input_precision=PREC)
            dq = tl.dot(gy, tl.trans(W), input_precision=PREC)
            dk = tl.dot(dd_, tl.trans(W), input_precision=PREC) + u_m[:, None] * tm + u_s[:, None] * ts
            if RESIDUAL:
                dq += gy
                dk += dd_
            tl.store(dq_ptr + tok, dq.to(dq_ptr.dtype.element_ty), mask=cd_m)
            tl.store(dk_ptr + tok, dk.to(dk_ptr.dtype.element_ty), mask=cd_m)
            tl.store(dv_ptr + tok, (-dd_).to(dv_ptr.dtype.element_ty), mask=cd_m)
            tl.store(dtw_ptr + chunk * 2 * C + tc, f * du_m, mask=mc)
            tl.store(dtw_ptr + chunk * 2 * C + C + tc, f * du_s, mask=mc)
        tl.debug_barrier()
        decay = tl.load(a_ptr + chunk * 4).to(tl.float32)
        s0_in_m = tl.load(a_ptr + chunk * 4 + 1).to(tl.float32)
        eta = tl.load(a_ptr + chunk * 4 + 3).to(tl.float32)
        dS = s0_in_m * dW + eta * dS
        dW = decay * dW + gW
    tl.store(dw_ptr + state + dd, dW, mask=dd_m)
    tl.store(ds_ptr + state + dd, dS, mask=dd_m)
