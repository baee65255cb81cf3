"""Triton kernels of the whole chunk loop for a depth-2 MLP memory ``M(x) = [x +] σ(x W0) W1``, forward and
backward (imported lazily by :mod:`hercules.ops.triton_chunk`, which documents the semantics and the layout).

One program per row (sample × head) walks the chunks of a call in order, holding the row's state ``W0, S0``
``[d, h]`` and ``W1, S1`` ``[h, d]`` as on-chip tiles. Per chunk: the reads of the queries, the keys' errors,
their back-propagated errors, the two weighted outer-product sums per weight (the token weights times an
optional per-token clip factor), and the end-of-chunk state ``X' = A X + G``. Everything is computed in float32;
tile sizes are powers of two of at least 16 (``tl.dot``'s minimum), masked to the true sizes.

The backward program walks the chunks in reverse from the chunk-start states the forward saved, recomputing
each chunk's forward quantities; the algebra is that of :func:`hercules.ops.mlp_chunk.mlp_chunk_backward`.
"""

from __future__ import annotations

import triton
import triton.language as tl

GELU, SILU, RELU, TANH = 0, 1, 2, 3
ACTIVATION_CODES = {"gelu": GELU, "silu": SILU, "relu": RELU, "tanh": TANH}


# One return per function, after compile-time branches (ACT, CLIP are constexpr).
@triton.jit
def _act(z, ACT: tl.constexpr):
    if ACT == 0:
        out = 0.5 * z * (1.0 + tl.erf(z * 0.7071067811865476))
    elif ACT == 1:
        out = z * tl.sigmoid(z)
    elif ACT == 2:
        out = tl.maximum(z, 0.0)
    else:
        out = 2.0 * tl.sigmoid(2.0 * z) - 1.0
    return out


@triton.jit
def _act_grad(z, ACT: tl.constexpr):
    """σ'(z)."""
    if ACT == 0:
        out = 0.5 * (1.0 + tl.erf(z * 0.7071067811865476)) + z * tl.exp(-0.5 * z * z) * 0.3989422804014327
    elif ACT == 1:
        s = tl.sigmoid(z)
        out = s * (1.0 + z * (1.0 - s))
    elif ACT == 2:
        out = (z > 0.0).to(tl.float32)
    else:
        t = 2.0 * tl.sigmoid(2.0 * z) - 1.0
        out = 1.0 - t * t
    return out


@triton.jit
def _act_second(z, ACT: tl.constexpr):
    """σ''(z)."""
    if ACT == 0:
        out = tl.exp(-0.5 * z * z) * 0.3989422804014327 * (2.0 - z * z)
    elif ACT == 1:
        s = tl.sigmoid(z)
        out = s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
    elif ACT == 2:
        out = z * 0.0
    else:
        t = 2.0 * tl.sigmoid(2.0 * z) - 1.0
        out = -2.0 * t * (1.0 - t * t)
    return out


@triton.jit
def _chunk_forward(q, k, v, W0, W1, ACT: tl.constexpr, RESIDUAL: tl.constexpr, PREC: tl.constexpr):
    """A chunk's reads and the keys' quantities: pre-activations, activations, output and hidden errors."""
    zq = tl.dot(q, W0, input_precision=PREC)
    aq = _act(zq, ACT)
    y = tl.dot(aq, W1, input_precision=PREC)
    zk = tl.dot(k, W0, input_precision=PREC)
    ak = _act(zk, ACT)
    d1 = tl.dot(ak, W1, input_precision=PREC) - v
    if RESIDUAL:
        y += q
        d1 += k
    p = tl.dot(d1, tl.trans(W1), input_precision=PREC)
    d0 = _act_grad(zk, ACT) * p
    return zq, aq, y, zk, ak, d1, p, d0


@triton.jit
def _clip_factor(k, ak, d1, d0, tau, CLIP: tl.constexpr):
    """``f_t = min(1, τ/‖g_t‖)`` with ``‖g_t‖² = 4 Σ_i ‖a_i,t‖² ‖δ_i,t‖²`` (1 without clipping)."""
    norm2 = 4.0 * (tl.sum(ak * ak, 1) * tl.sum(d1 * d1, 1) + tl.sum(k * k, 1) * tl.sum(d0 * d0, 1))
    if CLIP:
        norm = tl.sqrt(norm2)
        f = tl.where(norm > tau, tau / tl.maximum(norm, 1e-30), 1.0)
    else:
        f = norm2 * 0.0 + 1.0
    return f


@triton.jit(do_not_specialize=["F"])  # one compilation for any number of chunks
def mlp2_forward_kernel(
    q_ptr, k_ptr, v_ptr, tw_ptr, a_ptr, w0_ptr, s0_ptr, w1_ptr, s1_ptr, y_ptr,
    saved_w0, saved_s0, saved_w1, saved_s1, surprise_ptr, F, C, D, H, tau,
    BC: tl.constexpr, BD: tl.constexpr, BH: tl.constexpr, ACT: tl.constexpr, RESIDUAL: tl.constexpr,
    CLIP: tl.constexpr, SAVE: tl.constexpr, PREC: tl.constexpr,
):
    """Forward over ``F`` chunks of one row; the state tensors are read at the start and overwritten with the
    end state, and with ``SAVE`` each chunk's start state goes to ``saved_*`` ``[N, F, ...]``. A chunk's tokens
    are taken ``BC`` at a time (their gradient sums accumulated), so the tiles do not grow with the chunk size."""
    row = tl.program_id(0).to(tl.int64)
    td, th = tl.arange(0, BD), tl.arange(0, BH)
    md, mh = td < D, th < H
    dh = td[:, None] * H + th[None, :]
    hd = th[:, None] * D + td[None, :]
    dh_m, hd_m = md[:, None] & mh[None, :], mh[:, None] & md[None, :]
    state = row * D * H
    W0 = tl.load(w0_ptr + state + dh, mask=dh_m, other=0.0).to(tl.float32)
    S0 = tl.load(s0_ptr + state + dh, mask=dh_m, other=0.0).to(tl.float32)
    W1 = tl.load(w1_ptr + state + hd, mask=hd_m, other=0.0).to(tl.float32)
    S1 = tl.load(s1_ptr + state + hd, mask=hd_m, other=0.0).to(tl.float32)
    G0s = tl.zeros((BD, BH), tl.float32)
    G1s = tl.zeros((BH, BD), tl.float32)
    for i in range(F):
        chunk = row * F + i
        if SAVE:
            tl.store(saved_w0 + chunk * D * H + dh, W0, mask=dh_m)
            tl.store(saved_s0 + chunk * D * H + dh, S0, mask=dh_m)
            tl.store(saved_w1 + chunk * D * H + hd, W1, mask=hd_m)
            tl.store(saved_s1 + chunk * D * H + hd, S1, mask=hd_m)
        # The weights that the chunk's matrix products read go through global memory (the end-state buffers,
        # rewritten at the end; L2-resident), loaded where they are used: held across the token loop as matrix
        # operands, they would each occupy shared memory for the whole loop.
        tl.store(w0_ptr + state + dh, W0, mask=dh_m)
        tl.store(w1_ptr + state + hd, W1, mask=hd_m)
        tl.debug_barrier()
        G0m = tl.zeros((BD, BH), tl.float32)
        G0s = tl.zeros((BD, BH), tl.float32)
        G1m = tl.zeros((BH, BD), tl.float32)
        G1s = tl.zeros((BH, BD), tl.float32)
        for t0 in range(0, C, BC):
            tc = t0 + tl.arange(0, BC)
            mc = tc < C
            cd_m = mc[:, None] & md[None, :]
            tok = chunk * C * D + tc[:, None] * D + td[None, :]
            q = tl.load(q_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            k = tl.load(k_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            v = tl.load(v_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            W0c = tl.load(w0_ptr + state + dh, mask=dh_m, other=0.0)
            W1c = tl.load(w1_ptr + state + hd, mask=hd_m, other=0.0)
            zq, aq, y, zk, ak, d1, p, d0 = _chunk_forward(q, k, v, W0c, W1c, ACT, RESIDUAL, PREC)
            tl.store(y_ptr + tok, y.to(y_ptr.dtype.element_ty), mask=cd_m)
            f = 2.0 * _clip_factor(k, ak, d1, d0, tau, CLIP)
            u_m = f * tl.load(tw_ptr + chunk * 2 * C + tc, mask=mc, other=0.0).to(tl.float32)
            u_s = f * tl.load(tw_ptr + chunk * 2 * C + C + tc, mask=mc, other=0.0).to(tl.float32)
            G0m += tl.dot(tl.trans(k * u_m[:, None]), d0, input_precision=PREC)
            G0s += tl.dot(tl.trans(k * u_s[:, None]), d0, input_precision=PREC)
            G1m += tl.dot(tl.trans(ak * u_m[:, None]), d1, input_precision=PREC)
            G1s += tl.dot(tl.trans(ak * u_s[:, None]), d1, input_precision=PREC)
        tl.debug_barrier()  # every load of this chunk's weights is done before the next chunk stores its own
        decay = tl.load(a_ptr + chunk * 4).to(tl.float32)
        s0_in_m = tl.load(a_ptr + chunk * 4 + 1).to(tl.float32)
        eta = tl.load(a_ptr + chunk * 4 + 3).to(tl.float32)
        W0 = decay * W0 + s0_in_m * S0 + G0m
        W1 = decay * W1 + s0_in_m * S1 + G1m
        S0 = eta * S0 + G0s
        S1 = eta * S1 + G1s
    tl.store(w0_ptr + state + dh, W0, mask=dh_m)
    tl.store(s0_ptr + state + dh, S0, mask=dh_m)
    tl.store(w1_ptr + state + hd, W1, mask=hd_m)
    tl.store(s1_ptr + state + hd, S1, mask=hd_m)
    tl.store(surprise_ptr + row, tl.sqrt(tl.sum(tl.sum(G0s * G0s, 1), 0) + tl.sum(tl.sum(G1s * G1s, 1), 0)))


@triton.jit
def _dot2(x, y):
    return tl.sum(tl.sum(x * y, 1), 0)


@triton.jit(do_not_specialize=["F"])  # one compilation for any number of chunks
def mlp2_backward_kernel(
    q_ptr, k_ptr, v_ptr, tw_ptr, a_ptr, saved_w0, saved_s0, saved_w1, saved_s1, gy_ptr,
    dw0_ptr, ds0_ptr, dw1_ptr, ds1_ptr, dq_ptr, dk_ptr, dv_ptr, dtw_ptr, da_ptr, F, C, D, H, tau,
    BC: tl.constexpr, BD: tl.constexpr, BH: tl.constexpr, ACT: tl.constexpr, RESIDUAL: tl.constexpr,
    CLIP: tl.constexpr, PREC: tl.constexpr,
):
    """Backward over ``F`` chunks of one row, in reverse: ``d*_ptr`` of the state hold the end state's gradient
    on entry and the start state's on exit."""
    row = tl.program_id(0).to(tl.int64)
    td, th = tl.arange(0, BD), tl.arange(0, BH)
    md, mh = td < D, th < H
    dh = td[:, None] * H + th[None, :]
    hd = th[:, None] * D + td[None, :]
    dh_m, hd_m = md[:, None] & mh[None, :], mh[:, None] & md[None, :]
    state = row * D * H
    dW0 = tl.load(dw0_ptr + state + dh, mask=dh_m, other=0.0).to(tl.float32)
    dS0 = tl.load(ds0_ptr + state + dh, mask=dh_m, other=0.0).to(tl.float32)
    dW1 = tl.load(dw1_ptr + state + hd, mask=hd_m, other=0.0).to(tl.float32)
    dS1 = tl.load(ds1_ptr + state + hd, mask=hd_m, other=0.0).to(tl.float32)
    for j in range(F):
        chunk = row * F + (F - 1 - j)
        W0 = tl.load(saved_w0 + chunk * D * H + dh, mask=dh_m, other=0.0)
        S0 = tl.load(saved_s0 + chunk * D * H + dh, mask=dh_m, other=0.0)
        W1 = tl.load(saved_w1 + chunk * D * H + hd, mask=hd_m, other=0.0)
        S1 = tl.load(saved_s1 + chunk * D * H + hd, mask=hd_m, other=0.0)
        tl.store(da_ptr + chunk * 4, _dot2(dW0, W0) + _dot2(dW1, W1))
        tl.store(da_ptr + chunk * 4 + 1, _dot2(dW0, S0) + _dot2(dW1, S1))
        tl.store(da_ptr + chunk * 4 + 2, _dot2(dS0, W0) + _dot2(dS1, W1))
        tl.store(da_ptr + chunk * 4 + 3, _dot2(dS0, S0) + _dot2(dS1, S1))
        # as in the forward, the matrix operands of the token loop are loaded where they are used: the saved
        # weights from their buffer, the end state's gradients from the gradient buffers (written here)
        tl.store(dw0_ptr + state + dh, dW0, mask=dh_m)
        tl.store(ds0_ptr + state + dh, dS0, mask=dh_m)
        tl.store(dw1_ptr + state + hd, dW1, mask=hd_m)
        tl.store(ds1_ptr + state + hd, dS1, mask=hd_m)
        tl.debug_barrier()
        gW0 = tl.zeros((BD, BH), tl.float32)
        gW1 = tl.zeros((BH, BD), tl.float32)
        for t0 in range(0, C, BC):
            tc = t0 + tl.arange(0, BC)
            mc = tc < C
            cd_m = mc[:, None] & md[None, :]
            tok = chunk * C * D + tc[:, None] * D + td[None, :]
            q = tl.load(q_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            k = tl.load(k_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            v = tl.load(v_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            gy = tl.load(gy_ptr + tok, mask=cd_m, other=0.0).to(tl.float32)
            W0 = tl.load(saved_w0 + chunk * D * H + dh, mask=dh_m, other=0.0)
            W1 = tl.load(saved_w1 + chunk * D * H + hd, mask=hd_m, other=0.0)
            eW0 = tl.load(dw0_ptr + state + dh, mask=dh_m, other=0.0)
            eS0 = tl.load(ds0_ptr + state + dh, mask=dh_m, other=0.0)
            eW1 = tl.load(dw1_ptr + state + hd, mask=hd_m, other=0.0)
            eS1 = tl.load(ds1_ptr + state + hd, mask=hd_m, other=0.0)
            zq, aq, y, zk, ak, d1, p, d0 = _chunk_forward(q, k, v, W0, W1, ACT, RESIDUAL, PREC)
            f = 2.0 * _clip_factor(k, ak, d1, d0, tau, CLIP)
            u_m = f * tl.load(tw_ptr + chunk * 2 * C + tc, mask=mc, other=0.0).to(tl.float32)
            u_s = f * tl.load(tw_ptr + chunk * 2 * C + C + tc, mask=mc, other=0.0).to(tl.float32)
            # the adjoints of the weighted outer products G_i[m] = a_iᵀ diag(u_m) δ_i (∂G[m] = ∂W', ∂S')
            t1m = tl.dot(d1, tl.trans(eW1), input_precision=PREC)
            t1s = tl.dot(d1, tl.trans(eS1), input_precision=PREC)
            t0m = tl.dot(d0, tl.trans(eW0), input_precision=PREC)
            t0s = tl.dot(d0, tl.trans(eS0), input_precision=PREC)
            du_m = tl.sum(t1m * ak, 1) + tl.sum(t0m * k, 1)
            du_s = tl.sum(t1s * ak, 1) + tl.sum(t0s * k, 1)
            dak = u_m[:, None] * t1m + u_s[:, None] * t1s
            dk_outer = u_m[:, None] * t0m + u_s[:, None] * t0s
            dd1 = u_m[:, None] * tl.dot(ak, eW1, input_precision=PREC) + u_s[:, None] * tl.dot(ak, eS1, input_precision=PREC)
            dd0 = u_m[:, None] * tl.dot(k, eW0, input_precision=PREC) + u_s[:, None] * tl.dot(k, eS0, input_precision=PREC)
            # δ0 = σ'(z_k) ⊙ (δ1 W1ᵀ)
            dp = _act_grad(zk, ACT) * dd0
            dzk = _act_second(zk, ACT) * dd0 * p
            dd1 += tl.dot(dp, W1, input_precision=PREC)
            gW1 += tl.dot(tl.trans(dp), d1, input_precision=PREC)
            # the network's own backward over queries (∂y) and keys (∂δ1, as δ1 = M(k) − v)
            gW1 += tl.dot(tl.trans(aq), gy, input_precision=PREC) + tl.dot(tl.trans(ak), dd1, input_precision=PREC)
            dzq = _act_grad(zq, ACT) * tl.dot(gy, tl.trans(W1), input_precision=PREC)
            dzk += _act_grad(zk, ACT) * (dak + tl.dot(dd1, tl.trans(W1), input_precision=PREC))
            gW0 += tl.dot(tl.trans(q), dzq, input_precision=PREC) + tl.dot(tl.trans(k), dzk, input_precision=PREC)
            dq = tl.dot(dzq, tl.trans(W0), input_precision=PREC)
            dk = tl.dot(dzk, tl.trans(W0), input_precision=PREC) + dk_outer
            if RESIDUAL:
                dq += gy
                dk += dd1
            tl.store(dq_ptr + tok, dq.to(dq_ptr.dtype.element_ty), mask=cd_m)
            tl.store(dk_ptr + tok, dk.to(dk_ptr.dtype.element_ty), mask=cd_m)
            tl.store(dv_ptr + tok, (-dd1).to(dv_ptr.dtype.element_ty), mask=cd_m)
            tl.store(dtw_ptr + chunk * 2 * C + tc, f * du_m, mask=mc)
            tl.store(dtw_ptr + chunk * 2 * C + C + tc, f * du_s, mask=mc)
        tl.debug_barrier()
        decay = tl.load(a_ptr + chunk * 4).to(tl.float32)
        s0_in_m = tl.load(a_ptr + chunk * 4 + 1).to(tl.float32)
        eta = tl.load(a_ptr + chunk * 4 + 3).to(tl.float32)
        dS0 = s0_in_m * dW0 + eta * dS0
        dS1 = s0_in_m * dW1 + eta * dS1
        dW0 = decay * dW0 + gW0
        dW1 = decay * dW1 + gW1
    tl.store(dw0_ptr + state + dh, dW0, mask=dh_m)
    tl.store(ds0_ptr + state + dh, dS0, mask=dh_m)
    tl.store(dw1_ptr + state + hd, dW1, mask=hd_m)
    tl.store(ds1_ptr + state + hd, dS1, mask=hd_m)
