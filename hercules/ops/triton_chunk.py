"""The chunk loop of the memory update as fused Triton kernels: one launch forward, one backward, for all the
chunks of a call, with the state held on chip.

Same arguments and result as :func:`~hercules.ops.memory_update_chunked.memory_update_chunked` and the same
semantics as :func:`~hercules.ops.memory_update_naive.memory_update_naive` (its test oracle), plus the per-token
gradient-norm clip ``max_grad_norm``. The scalar chunk coefficients (products of the rates) are computed by
:func:`~hercules.ops.memory_update_chunked.chunk_coefficients` through autograd, outside the kernel; the kernel
takes them as token weights ``[N, F, 2, c]`` and a transition ``A = [[Π(1−α), s0_in_m], [0, Πη]]`` per chunk,
and gives back their gradients.

Supported: the residual or plain MLP memory of depth 2 (``M(x) = [x +] σ(x W0) W1``, σ one of gelu, silu, relu,
tanh), whose weights tile on chip: ``pow2(d) · pow2(h) ≤`` :data:`MAX_TILE` (with ``pow2`` rounding up to a power
of two of at least 16). Everything else (other depths, ``linear``, ``swiglu``, larger heads) is not supported
here; :func:`supports` says so and the caller falls back to the torch path. The kernels compute in float32
(``tl.dot`` in IEEE float32 for float32 inputs, TF32 for lower-precision ones) and return the reads in the
queries' dtype and the state in the state's dtype.

On CPU the kernels run under Triton's interpreter (``TRITON_INTERPRET=1`` set before ``triton`` is imported),
which is how the tests hold them to the reference; this module imports ``triton`` only when a kernel is first
called.
"""

from __future__ import annotations

import importlib
import importlib.util
from contextlib import nullcontext
from typing import NamedTuple

import torch
from torch import Tensor

from hercules.ops.memory_update_chunked import chunk_coefficients
from hercules.ops.memory_update_naive import MemoryUpdate, ModelFn

MAX_TILE = 128 * 256
"""Largest ``pow2(d) · pow2(h)`` of a weight that the kernel holds on chip (d = 128 with expansion 2)."""


class MLPSpec(NamedTuple):
    """What the kernel needs to know of an MLP memory: ``depth``, ``activation`` name, ``residual``."""

    depth: int
    activation: str
    residual: bool


def triton_available() -> bool:
    """Whether ``triton`` is installed (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def _tile(n: int) -> int:
    return max(16, 1 << (n - 1).bit_length())


def supports(spec: MLPSpec | None, weights: dict[str, Tensor]) -> bool:
    """Whether the kernel runs this memory: depth 2, a known activation, and weights that tile on chip."""
    if spec is None or spec.depth != 2 or spec.activation not in ("gelu", "silu", "relu", "tanh"):
        return False
    if set(weights) != {"w0", "w1"}:
        return False
    d, h = weights["w0"].shape[-2:]
    return _tile(d) * _tile(h) <= MAX_TILE


def _kernels():
    """The kernel module, imported on first use (through ``sys.modules``, so that a test may re-import it with
    ``TRITON_INTERPRET`` changed: Triton reads that variable when a kernel is defined)."""
    return importlib.import_module("hercules.ops.triton_mlp_kernels")


def _launch_config(d: int, h: int, c: int) -> dict:
    tiles = _tile(d) * _tile(h)
    return {"BC": _tile(c), "BD": _tile(d), "BH": _tile(h), "num_warps": 4 if tiles <= 4096 else 8}


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype in (torch.float32, torch.float64) else "tf32"


class _FusedMLP2(torch.autograd.Function):
    """All complete chunks of a call for a depth-2 MLP: inputs chunked ``q, k, v`` ``[N, F, c, d]``, token
    weights ``[N, F, 2, c]``, transition ``[N, F, 4]`` and the start states ``W0, S0, W1, S1``; outputs the reads
    ``[N, F, c, d]``, the end states and the surprise ``[N]`` (not differentiable)."""

    @staticmethod
    def forward(ctx, spec: MLPSpec, tau: float | None, q, k, v, tw, transition, w0, s0, w1, s1):
        save = any(ctx.needs_input_grad)
        y, ends, surprise, saved = _forward(spec, tau, q, k, v, tw, transition, (w0, s0, w1, s1), save)
        ctx.spec, ctx.tau, ctx.state_dtypes = spec, tau, [t.dtype for t in (w0, s0, w1, s1)]
        ctx.save_for_backward(q, k, v, tw, transition, *saved)
        ctx.mark_non_differentiable(surprise)
        return y, *ends, surprise

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y, *grad_states):
        kernels = _kernels()
        q, k, v, tw, transition, *saved = ctx.saved_tensors
        rows, chunks, c, d = q.shape
        h = saved[0].shape[-1]
        d_states = [
            torch.zeros_like(s) if g is None else g.float().contiguous().clone()
            for g, s in zip(grad_states[:4], saved, strict=True)
        ]
        grad_y = torch.zeros_like(q) if grad_y is None else grad_y.contiguous()
        dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
        dtw, da = torch.empty_like(tw), torch.empty_like(transition)
        config = _launch_config(d, h, c)
        with _on_device(q):
            kernels.mlp2_backward_kernel[(rows,)](
                q, k, v, tw, transition, *saved, grad_y, *d_states, dq, dk, dv, dtw, da,
                chunks, c, d, h, float(ctx.tau or 0.0),
                ACT=kernels.ACTIVATION_CODES[ctx.spec.activation], RESIDUAL=ctx.spec.residual,
                CLIP=ctx.tau is not None, PREC=_precision(q.dtype), **config,
            )
        d_states = [g.to(dtype) for g, dtype in zip(d_states, ctx.state_dtypes, strict=True)]
        return None, None, dq, dk, dv, dtw, da, *d_states


def _on_device(x: Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device)."""
    return torch.cuda.device(x.device) if x.is_cuda else nullcontext()


def _forward(spec: MLPSpec, tau, q, k, v, tw, transition, states, save: bool):
    """Launch the forward kernel; returns the reads, the end states, the surprise and the saved start states."""
    kernels = _kernels()
    rows, chunks, c, d = q.shape
    h = states[0].shape[-1]
    work = [s.float().contiguous().clone() for s in states]  # the kernel overwrites them with the end state
    saved = [q.new_empty(rows, chunks, *s.shape[1:], dtype=torch.float32) for s in states] if save else []
    dummy = q.new_empty(1, dtype=torch.float32)
    y = torch.empty_like(q)
    surprise = q.new_empty(rows, dtype=torch.float32)
    with _on_device(q):
        kernels.mlp2_forward_kernel[(rows,)](
            q, k, v, tw, transition, *work, y, *(saved or [dummy] * 4), surprise,
            chunks, c, d, h, float(tau or 0.0),
            ACT=kernels.ACTIVATION_CODES[spec.activation], RESIDUAL=spec.residual, CLIP=tau is not None,
            SAVE=save, PREC=_precision(q.dtype), **_launch_config(d, h, c),
        )
    ends = tuple(w.to(s.dtype) for w, s in zip(work, states, strict=True))
    return y, ends, surprise, saved


def fused_chunks(
    spec: MLPSpec, W: dict[str, Tensor], S: dict[str, Tensor], q: Tensor, k: Tensor, v: Tensor,
    coef: dict[str, Tensor], max_grad_norm: float | None = None,
) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor], Tensor]:
    """All complete chunks; ``q, k, v`` ``[N, F, c, d]``, ``coef`` of
    :func:`~hercules.ops.memory_update_chunked.chunk_coefficients` ``[N, F, c]``/``[N, F]``. Returns the reads
    ``[N, F, c, d]``, the end weights and momenta, and the surprise ``[N]``."""
    tw = torch.stack([-coef["w_m"], -coef["w_s"]], dim=2).float().contiguous()
    eta = coef["eta_all"]
    transition = torch.stack([coef["decay_all"], coef["s0_in_m"], torch.zeros_like(eta), eta], -1)
    args = (*(t.contiguous() for t in (q, k, v)), tw, transition.float().contiguous())
    states = (W["w0"], S["w0"], W["w1"], S["w1"])
    tau = None if max_grad_norm is None else float(max_grad_norm)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (*args, *states)):
        y, w0, s0, w1, s1, surprise = _FusedMLP2.apply(spec, tau, *args, *states)
    else:
        y, (w0, s0, w1, s1), surprise, _ = _forward(spec, tau, *args, states, save=False)
    return y, {"w0": w0, "w1": w1}, {"w0": s0, "w1": s1}, surprise


def memory_update_triton(
    spec: MLPSpec, model_fn: ModelFn, weights: dict[str, Tensor], momentum: dict[str, Tensor], q: Tensor,
    k: Tensor, v: Tensor, lr: Tensor, mom: Tensor, forget: Tensor, chunk_size: int, read_from: int = 0,
    max_grad_norm: float | None = None,
) -> MemoryUpdate:
    """The memory update with the chunk loop in Triton; arguments and result as
    :func:`~hercules.ops.memory_update_naive.memory_update_naive` (``spec`` describes the model, which
    :func:`supports` must accept; ``model_fn`` reads the unfinished trailing chunk)."""
    rows, length = q.shape[:2]
    full = length // chunk_size
    W, S, reads = dict(weights), dict(momentum), []
    surprise = q.new_zeros(rows)
    if full:
        chunked = lambda x: x[:, : full * chunk_size].unflatten(1, (full, chunk_size))  # noqa: E731
        coef = chunk_coefficients(*(chunked(x) for x in (lr, mom, forget)))
        y, W, S, surprise = fused_chunks(spec, W, S, *(chunked(x) for x in (q, k, v)), coef, max_grad_norm)
        reads.append(y.flatten(1, 2)[:, read_from:])
    if full * chunk_size < length:  # the unfinished chunk is read, not written
        reads.append(model_fn(W, q[:, max(full * chunk_size, read_from) :]))
    y = torch.cat(reads, dim=1) if reads else q.new_zeros(rows, 0, v.shape[-1])
    return MemoryUpdate(y, W, S, surprise.to(q.dtype))
