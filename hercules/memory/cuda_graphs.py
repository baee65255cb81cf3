"""CUDA-graph capture of a memory layer's forward and backward, for fixed-shape training on a GPU.

On a GPU the chunked update is bound by kernel launches, not arithmetic: each chunk runs a few dozen small
kernels forward and backward, one after the other, so a 2048-token sequence at chunk size 16 issues thousands
of launches from Python. :func:`capture_memory` records them once as two CUDA graphs (forward, backward) and
replays each with a single launch. ``MemoryConfig(cuda_graphs=True)`` does this inside the layer, for the calls
where it applies (training on CUDA from a fresh state, with or without autocast); everything else runs eagerly.

Graphs are static, which is what the caller accepts in exchange:

- every call takes an input of the captured shape, dtype and device, and starts from a fresh state;
- the outputs (``y`` and the returned state) live in the graph's buffers and are overwritten by the next call:
  run the backward of one call before the next call, and clone what must outlive it;
- one forward per backward: a layer called twice before one backward (gradient checkpointing that re-runs
  the forward, or the same memory used twice in one model) needs eager mode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from hercules.memory.layer import NeuralMemory
from hercules.memory.state import MemoryState


class _FlatOutputs(nn.Module):
    """``x → (y, state as a flat dict)``: CUDA-graph helpers take and return tensors only."""

    def __init__(self, memory: NeuralMemory) -> None:
        super().__init__()
        self.memory = memory

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        y, state = self.memory.forward_eager(x)
        return y, state.tensors()


def capture_memory(
    memory: NeuralMemory, example: Tensor, warmup: int = 3
) -> Callable[[Tensor], tuple[Tensor, MemoryState]]:
    """Capture ``memory``'s forward and backward from a fresh state for inputs shaped like ``example``.

    Returns ``run(x) → (y, state)``, a drop-in for ``memory(x)`` under the constraints of the module docstring;
    gradients reach ``x`` (when ``example`` requires grad) and every parameter of ``memory``, as in eager mode.
    Called under ``torch.autocast``, the graphs compute in its precision, whatever the context of later calls.
    ``memory`` itself is not modified; its parameters may be updated in place (an optimiser step) between calls.

    Examples:
        >>> import torch
        >>> from hercules.memory import MemoryConfig, NeuralMemory
        >>> if torch.cuda.is_available():  # doctest: +SKIP
        ...     memory = NeuralMemory(64, MemoryConfig(chunk_size=16)).cuda()
        ...     x = torch.randn(2, 512, 64, device="cuda")
        ...     run = capture_memory(memory, x)
        ...     y, state = run(x)
        ...     y.square().mean().backward()
    """
    if not example.is_cuda:
        raise ValueError(f"capture_memory needs a CUDA tensor; the example is on {example.device}")
    if next(memory.parameters()).device != example.device:
        raise ValueError(
            "capture_memory: move the memory to the example's device first (memory.to(example.device))"
        )
    # Under autocast the graphs record its casts; its cache of cast weights must stay off during capture, or
    # the graphs would keep casts made from the parameters' values at capture time.
    autocast = torch.is_autocast_enabled("cuda")
    dtype = torch.get_autocast_dtype("cuda") if autocast else None
    with torch.autocast("cuda", dtype=dtype, enabled=autocast, cache_enabled=False):
        flat = torch.cuda.make_graphed_callables(
            _FlatOutputs(memory), (example,), num_warmup_iters=warmup, allow_unused_input=True
        )

    def run(x: Tensor) -> tuple[Tensor, MemoryState]:
        if x.shape != example.shape or x.dtype != example.dtype or x.device != example.device:
            raise ValueError(
                f"captured for {tuple(example.shape)} {example.dtype} on {example.device}, got {tuple(x.shape)} "
                f"{x.dtype} on {x.device}: capture once per input shape"
            )
        y, tensors = flat(x)
        return y, MemoryState.from_tensors(tensors)

    return run
