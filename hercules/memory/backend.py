"""Which implementation runs the chunk loop: the torch path (:mod:`hercules.ops.chunk_scan`) or the fused Triton
kernels (:mod:`hercules.ops.triton_chunk`), from ``MemoryConfig.backend``.

- ``auto`` (default): Triton when the tensors are on CUDA, ``triton`` imports, the memory model and its size are
  supported (:func:`~hercules.ops.triton_chunk.supports`), the compiled kernels fit the GPU's shared memory
  (:func:`~hercules.ops.triton_chunk.fits_on_device`) and the model's chunk step was not replaced
  (``compile: true``); the torch path everywhere else.
- ``torch``: always the torch path.
- ``triton``: the kernels wherever they apply (on CPU only under Triton's interpreter, ``TRITON_INTERPRET=1``);
  a model or size they do not support falls back to the torch path with a logged warning.
"""

from __future__ import annotations

import logging
import os

from torch import Tensor

from hercules.memory.models.base import MemoryModel
from hercules.ops.memory_update_naive import MemoryUpdate
from hercules.ops.triton_chunk import (
    MLPSpec,
    fits_on_device,
    memory_update_triton,
    supports,
    triton_available,
)

logger = logging.getLogger(__name__)
_warned: set[str] = set()


def triton_spec(model: MemoryModel) -> MLPSpec | None:
    """The kernel's description of a built-in memory model, ``None`` for any other model."""
    config = model.config
    kind = getattr(config, "kind", None)
    if kind == "mlp":
        return MLPSpec(config.depth, config.activation, config.residual)
    if kind == "linear":
        return MLPSpec(1, "none", residual=False)
    return None


def _runs_triton(backend: str, model: MemoryModel, weights: dict[str, Tensor], q: Tensor, chunk_size: int) -> bool:
    if backend == "torch":
        return False
    spec = triton_spec(model)
    if backend == "auto":
        return (
            q.is_cuda and triton_available() and model.chunk_kernel is not None and supports(spec, weights)
            and fits_on_device(spec, weights, q, chunk_size)
        )
    if not triton_available():
        raise RuntimeError("memory.backend='triton' needs the triton package: pip install triton, or set backend: auto")
    if not q.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            f"memory.backend='triton' runs on CUDA tensors, not {q.device}; set backend: auto (or TRITON_INTERPRET=1 "
            "before importing triton, to run the kernels in Triton's slow interpreter)"
        )
    if supports(spec, weights) and fits_on_device(spec, weights, q, chunk_size):
        return True
    reason = f"{type(model).__name__} {model.config!r} with weights {[tuple(w.shape[1:]) for w in weights.values()]}"
    if reason not in _warned:
        _warned.add(reason)
        logger.warning("memory.backend='triton' does not support %s; using the torch path", reason)
    return False


def triton_update(
    backend: str, model: MemoryModel, weights: dict[str, Tensor], momentum: dict[str, Tensor], q: Tensor,
    k: Tensor, v: Tensor, lr: Tensor, mom: Tensor, forget: Tensor, chunk_size: int, read_from: int = 0,
    max_grad_norm: float | None = None,
) -> MemoryUpdate | None:
    """The update through the Triton kernels if ``backend`` picks them for this call, else ``None`` (the caller
    then runs the torch path). Arguments as :func:`~hercules.ops.memory_update_naive.memory_update_naive`."""
    if not _runs_triton(backend, model, weights, q, chunk_size):
        return None
    order = list(model.initial)  # the kernels take the weight matrices in layer order
    weights, momentum = ({n: group[n] for n in order} for group in (weights, momentum))
    return memory_update_triton(
        triton_spec(model), model.functional, weights, momentum, q, k, v, lr, mom, forget, chunk_size,
        read_from=read_from, max_grad_norm=max_grad_norm,
    )
