"""Arithmetic of the memory layer, and the peak rates of known GPUs, for the benchmarks' TFLOP/s columns.

Model FLOPs per token of one memory layer with ``H`` heads of size ``d`` (model width ``D = H d``) and a depth-2
MLP memory of hidden size ``h``, forward, counted as 2 per multiply-add:

- projections: ``q, k, v`` and the output, ``2 · 4 D²``;
- the chunk loop, per head: the read ``σ(q W0) W1`` (``4 d h``), the key's forward and its error sent back
  through ``W1`` (``6 d h``), and the two weighted outer-product sums per weight matrix (``8 d h``), ``18 d h``.

Training counts the usual three times the forward (backward = twice the forward). The Triton backward recomputes
the chunk's forward, so it executes more than this count; the TFLOP/s reported are model FLOPs, the convention
that makes implementations comparable.
"""

from __future__ import annotations

PEAK_TFLOPS = {
    # dense peak per GPU (no sparsity), TFLOP/s: float32 on the FMA units, TF32 and bfloat16 on the tensor cores
    "H200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "H100 80GB HBM3": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0},
    "A100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0},
}


def peak_tflops(device_name: str, precision: str = "fp32") -> float | None:
    """The peak of a GPU by its ``torch.cuda.get_device_name`` (the first known name it contains), else ``None``."""
    for name, peaks in PEAK_TFLOPS.items():
        if name in device_name:
            return peaks[precision]
    return None


def memory_flops_per_token(dim: int, heads: int = 1, expansion: float = 2.0, training: bool = True) -> float:
    """Model FLOPs per token of a memory layer of width ``dim`` (depth-2 MLP memory; see the module docstring)."""
    d = dim // heads
    h = max(1, round(d * expansion))
    forward = 8 * dim * dim + heads * 18 * d * h
    return 3 * forward if training else forward
