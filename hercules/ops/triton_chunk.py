"""The chunk loop of the memory update as fused Triton kernels: one launch forward, one backward, for all the
chunks of a call, with the state held on chip.

Same arguments and result as :func:`~hercules.ops.memory_update_chunked.memory_update_chunked` and the same
semantics as :func:`~hercules.ops.memory_update_naive.memory_update_naive` (its test oracle), plus the per-token
gradient-norm clip ``max_grad_norm``. The scalar chunk coefficients (products of the rates) are computed by
:func:`~hercules.ops.memory_update_chunked.chunk_coefficients` through autograd, outside the kernel; the kernel
takes them as token weights ``[N, F, 2, c]`` and a transition ``A = [[Π(1−α), s0_in_m], [0, Πη]]`` per chunk,
and gives back their gradients.

Supported: the MLP memory of depth 2 (``M(x) = [x +] σ(x W0) W1``, σ one of gelu, silu, relu, tanh;
:mod:`~hercules.ops.triton_mlp_kernels`) and of depth 1 (``M(x) = [x +] x W``, which is also the ``linear``
memory; :mod:`~hercules.ops.triton_mlp1_kernels`), with weights that tile on chip: ``pow2(d) · pow2(h) ≤``
:data:`MAX_TILE` (``pow2`` rounds up to a power of two of at least 16). Everything else (depth 3 and more,
``swiglu``, larger heads) is not supported here: :func:`supports` says so, and the caller falls back to the
torch path; on CUDA, :func:`fits_on_device` also checks the compiled kernels' shared memory against the GPU's.
The kernels compute in float32 (``tl.dot`` as three TF32 products, about float32's accuracy) and return the reads
in the queries' dtype and the state in the state's dtype.

On CPU the kernels run under Triton's interpreter (``TRITON_INTERPRET=1`` set before ``triton`` is imported),
which is how the tests hold them to the reference; this module imports ``triton`` only when a kernel is first
called.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from contextlib import nullcontext
from typing import NamedTuple

import torch
from torch import Tensor

from hercules.ops.memory_update_chunked import chunk_coefficients
from hercules.ops.memory_update_naive import MemoryUpdate, ModelFn

logger = logging.getLogger(__name__)

MAX_TILE = 64 * 128
"""Largest ``pow2(d) · pow2(h)`` of a weight that the kernels take (d = 64 with expansion 2). Compiled for sm_90
at d = 128 (h = 256) they need 541 KB of shared memory forward and 279 KB backward, more than a block may have."""


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
    """Whether the kernels run this memory: depth 1 or 2, a known activation, weights that tile on chip."""
    if spec is None or spec.depth not in (1, 2) or len(weights) != spec.depth:
        return False
    if spec.depth == 2 and spec.activation not in ("gelu", "silu", "relu", "tanh"):
        return False
    d, h = next(iter(weights.values())).shape[-2:]
    return _tile(d) * _tile(h) <= MAX_TILE


def _compiled_shared_memory(spec: MLPSpec, forward, backward, sizes, options, q: Tensor) -> tuple[int, int]:
    """Shared memory (bytes) of the forward and backward kernels, compiled for ``q``'s device without a launch."""
    states, f32 = 2 * spec.depth, torch.float32
    pointers = [q.dtype] * 3 + [f32] * 2  # q, k, v, token weights, transition
    with _on_device(q):
        fwd = forward.warmup(
            *pointers, *[f32] * states, q.dtype, *[f32] * (states + 1), 2, *sizes, 1.0, grid=(1,), SAVE=True, **options
        )
        bwd = backward.warmup(
            *pointers, *[f32] * states, q.dtype, *[f32] * states, *[q.dtype] * 3, f32, f32, 2, *sizes, 1.0,
            grid=(1,), **options,
        )
    return fwd.metadata.shared, bwd.metadata.shared


def _shared_memory_limit(device: torch.device) -> int:
    limit = getattr(torch.cuda.get_device_properties(device), "shared_memory_per_block_optin", None)
    if limit is None:
        from triton.runtime import driver

        limit = driver.active.utils.get_device_properties(device.index or 0)["max_shared_mem"]
    return limit


def _kernels(spec: MLPSpec, tau: float | None, q: Tensor, h: int):
    """The forward and backward kernels for ``spec``, their size arguments and their compile-time options.

    The kernel modules are imported on first use, through ``sys.modules`` (Triton decides between compiling and
    interpreting when a kernel is defined)."""
    c, d = q.shape[2:]
    # BC: the tokens of a chunk taken together (16, tl.dot's least; a larger chunk is walked in steps of 16)
    options = {"RESIDUAL": spec.residual, "CLIP": tau is not None, "PREC": _precision(q.dtype), "BC": 16}
    options["BD"] = _tile(d)
    if spec.depth == 1:
        module = importlib.import_module("hercules.ops.triton_mlp1_kernels")
        kernels, sizes = (module.mlp1_forward_kernel, module.mlp1_backward_kernel), (c, d)
    else:
        module = importlib.import_module("hercules.ops.triton_mlp_kernels")
        kernels, sizes = (module.mlp2_forward_kernel, module.mlp2_backward_kernel), (c, d, h)
        options |= {"ACT": module.ACTIVATION_CODES[spec.activation], "BH": _tile(h)}
    tiles = _tile(d) * _tile(h)  # more warps for larger tiles: the state is held in registers
    options["num_warps"] = 4 if tiles <= 2048 else 8 if tiles <= 8192 else 16
    return kernels, sizes, options


def _precision(dtype: torch.dtype) -> str:
    """``tl.dot``'s precision, whatever the inputs' dtype (the kernels compute in float32): three TF32 products,
    about float32's accuracy on the tensor cores. IEEE float32 products (on the FMA units) need more shared memory
    than a Hopper GPU has at d = 64 (316 KB in the backward, compiled for sm_90), and one TF32 product happened to
    need more than three there (262 KB against 74 KB)."""
    return "tf32x3"


_FITS: dict[tuple, bool] = {}


def fits_on_device(
    spec: MLPSpec, weights: dict[str, Tensor], q: Tensor, chunk_size: int, max_grad_norm: float | None = None
) -> bool:
    """Whether both kernels for this shape fit the GPU's shared memory, from their compiled metadata (compiled once
    per configuration and cached, by Triton too); always true off CUDA (the interpreter has no such limit)."""
    if not q.is_cuda:
        return True
    d, h = next(iter(weights.values())).shape[-2:]
    probe = q.new_empty(1, 1, chunk_size, d)  # the shape of a chunked q, which sets the tiles
    tau = None if max_grad_norm is None else 1.0
    (forward, backward), sizes, options = _kernels(spec, tau, probe, h)
    key = (spec, tau, q.dtype, q.device.index, tuple(sorted(options.items())))
    if key not in _FITS:
        try:
            needed = max(_compiled_shared_memory(spec, forward, backward, sizes, options, q))
            limit = _shared_memory_limit(q.device)
        except Exception as error:  # noqa: BLE001 (a check that cannot run must not break the layer)
            logger.warning("could not check the Triton chunk loop's resources (%s); using the torch path", error)
            needed, limit = 1, 0
        else:
            if needed > limit:
                logger.info("the Triton chunk loop needs %d bytes of shared memory for %s, more than %d", needed, key, limit)
        _FITS[key] = needed <= limit
    return _FITS[key]


def _on_device(x: Tensor):
    """Launch on ``x``'s GPU (Triton launches on the current device)."""
    return torch.cuda.device(x.device) if x.is_cuda else nullcontext()


class _FusedChunks(torch.autograd.Function):
    """All complete chunks of a call: inputs chunked ``q, k, v`` ``[N, F, c, d]``, token weights
    ``[N, F, 2, c]``, transition ``[N, F, 4]`` and the start states ``W_0, S_0, W_1, S_1, …`` (one pair per weight
    matrix); outputs the reads ``[N, F, c, d]``, the end states and the surprise ``[N]`` (not differentiable)."""

    @staticmethod
    def forward(ctx, spec: MLPSpec, tau: float | None, q, k, v, tw, transition, *states):
        y, ends, surprise, saved = _forward(spec, tau, q, k, v, tw, transition, states, save=True)
        ctx.spec, ctx.tau, ctx.state_dtypes = spec, tau, [t.dtype for t in states]
        ctx.save_for_backward(q, k, v, tw, transition, *saved)
        ctx.mark_non_differentiable(surprise)
        return y, *ends, surprise

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y, *grad_states):
        q, k, v, tw, transition, *saved = ctx.saved_tensors
        rows, chunks = q.shape[:2]
        (_, backward), sizes, options = _kernels(ctx.spec, ctx.tau, q, saved[0].shape[-1])
        # in: the end states' gradients; the kernel overwrites them with the start states'
        d_states = [
            s.new_zeros(s[:, 0].shape) if g is None else g.float().contiguous().clone()
            for g, s in zip(grad_states[:-1], saved, strict=True)
        ]
        grad_y = torch.zeros_like(q) if grad_y is None else grad_y.contiguous()
        dq, dk, dv = (torch.empty_like(t) for t in (q, k, v))
        dtw, da = torch.empty_like(tw), torch.empty_like(transition)
        with _on_device(q):
            backward[(rows,)](
                q, k, v, tw, transition, *saved, grad_y, *d_states, dq, dk, dv, dtw, da,
                chunks, *sizes, float(ctx.tau or 0.0), **options,
            )
        d_states = [g.to(dtype) for g, dtype in zip(d_states, ctx.state_dtypes, strict=True)]
        return None, None, dq, dk, dv, dtw, da, *d_states


def _forward(spec: MLPSpec, tau, q, k, v, tw, transition, states, save: bool):
    """Launch the forward kernel; returns the reads, the end states, the surprise and (with ``save``) each
    chunk's start states ``[N, F, ...]``."""
    rows, chunks = q.shape[:2]
    (forward, _), sizes, options = _kernels(spec, tau, q, states[0].shape[-1])
    work = [s.float().contiguous().clone() for s in states]  # the kernel overwrites them with the end state
    saved = [q.new_empty(rows, chunks, *s.shape[1:], dtype=torch.float32) for s in states] if save else []
    dummy = [q.new_empty(1, dtype=torch.float32)] * len(states)
    y = torch.empty_like(q)
    surprise = q.new_empty(rows, dtype=torch.float32)
    with _on_device(q):
        forward[(rows,)](
            q, k, v, tw, transition, *work, y, *(saved or dummy), surprise, chunks, *sizes, float(tau or 0.0),
            SAVE=save, **options,
        )
    ends = tuple(w.to(s.dtype) for w, s in zip(work, states, strict=True))
    return y, ends, surprise, saved


def fused_chunks(
    spec: MLPSpec, W: dict[str, Tensor], S: dict[str, Tensor], q: Tensor, k: Tensor, v: Tensor,
    coef: dict[str, Tensor], max_grad_norm: float | None = None,
) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor], Tensor]:
    """All complete chunks; ``W, S`` ``name → [N, ...]`` in layer order, ``q, k, v`` ``[N, F, c, d]``, ``coef``
    of :func:`~hercules.ops.memory_update_chunked.chunk_coefficients` ``[N, F, c]``/``[N, F]``. Returns the reads
    ``[N, F, c, d]``, the end weights and momenta, and the surprise ``[N]``."""
    tw = torch.stack([-coef["w_m"], -coef["w_s"]], dim=2).float().contiguous()
    eta = coef["eta_all"]
    transition = torch.stack([coef["decay_all"], coef["s0_in_m"], torch.zeros_like(eta), eta], -1)
    args = (*(t.contiguous() for t in (q, k, v)), tw, transition.float().contiguous())
    states = tuple(x for n in W for x in (W[n], S[n]))
    tau = None if max_grad_norm is None else float(max_grad_norm)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (*args, *states)):
        y, *ends, surprise = _FusedChunks.apply(spec, tau, *args, *states)
    else:
        y, ends, surprise, _ = _forward(spec, tau, *args, states, save=False)
    names = list(W)
    return y, dict(zip(names, ends[0::2], strict=True)), dict(zip(names, ends[1::2], strict=True)), surprise


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
