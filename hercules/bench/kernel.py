"""Benchmark of the chunk loop alone: the memory update's forward + backward over ``N`` rows (batch × heads) of
``T`` tokens, the Triton kernels (``triton``) against the torch path (``torch``, :mod:`hercules.ops.chunk_scan`),
without the layer's projections. The kernels run one program per row, so ``N`` sets how much of the GPU they
fill; the table reports tokens/s (over all rows), model TFLOP/s of the update (three times ``18 d h`` per token
and row, :mod:`hercules.bench._flops`) and their fraction of the device's float32 peak.

Run: ``python -m hercules.bench.kernel --device cuda`` (``--rows 2 32 256``, ``--configs T:D:C ...``,
``--impls torch triton``, ``--json out.json``). ``--resources 32 64 128`` needs no GPU: it compiles the kernels
for a GPU architecture (``--arch 90``, Hopper) on this machine and prints the shared memory each needs per
head size (the measure of what fits, and how the supported sizes were chosen).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from hercules.bench._flops import peak_tflops
from hercules.memory.models.mlp import MLPMemory, MLPMemoryConfig
from hercules.ops.memory_update_chunked import memory_update_chunked
from hercules.ops.triton_chunk import MLPSpec, memory_update_triton


def _inputs(rows: int, seq: int, dim: int, device: str):
    torch.manual_seed(0)
    model = MLPMemory(MLPMemoryConfig(), dim, rows).to(device)
    weights = {n: p.detach().clone().requires_grad_() for n, p in model.initial.items()}
    momentum = {n: torch.zeros_like(w, requires_grad=True) for n, w in weights.items()}
    qkv = [F.normalize(torch.randn(rows, seq, dim, device=device), dim=-1).requires_grad_() for _ in range(3)]
    rates = [torch.full((rows, seq), x, device=device, requires_grad=True) for x in (0.1, 0.9, 0.01)]
    return model, (weights, momentum, *qkv, *rates)


def measure(impl: str, rows: int, seq: int, dim: int, chunk: int, device: str, seconds: float) -> dict:
    """Tokens/s (all rows together) of forward + backward of one update over ``seq`` tokens."""
    model, (weights, momentum, *tensors) = _inputs(rows, seq, dim, device)
    leaves = [*weights.values(), *momentum.values(), *tensors]

    def step() -> None:
        if impl == "triton":
            out = memory_update_triton(MLPSpec(2, "gelu", True), model.functional, weights, momentum, *tensors, chunk)
        else:
            out = memory_update_chunked(
                model.functional, weights, momentum, *tensors, chunk, chunk_kernel=model.make_chunk_kernel()
            )
        loss = out.y.square().mean() + sum(w.square().mean() for w in out.weights.values())
        torch.autograd.grad(loss, leaves)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    step()  # compilation and warm-up
    sync()
    steps, start = 0, time.perf_counter()
    while steps == 0 or time.perf_counter() - start < seconds:
        step()
        steps += 1
    sync()
    elapsed = time.perf_counter() - start
    hidden = 2 * dim
    tokens_per_s = rows * seq * steps / elapsed
    return {"tokens_per_s": tokens_per_s, "tflops": tokens_per_s * 3 * 18 * dim * hidden / 1e12, "steps": steps}


def shared_memory(depth: int, dim: int, arch: int = 90) -> dict[str, int]:
    """Bytes of shared memory of the forward and backward kernels for heads of ``dim`` (expansion 2), compiled for
    CUDA architecture ``arch`` without a device (float32 inputs, clipping on)."""
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from hercules.ops.triton_chunk import _kernels

    hidden = dim if depth == 1 else 2 * dim
    (forward, backward), _, options = _kernels(MLPSpec(depth, "gelu", True), 1.0, torch.empty(1, 1, 16, dim), hidden)
    warps = options.pop("num_warps")
    out = {}
    for name, kernel, extra in (("forward", forward, {"SAVE": True}), ("backward", backward, {})):
        constants = options | extra
        signature = {
            p: "constexpr" if p in constants else "fp32" if p == "tau" else "i32" if p in ("F", "C", "D", "H") else "*fp32"
            for p in inspect.signature(kernel.fn).parameters
        }
        compiled = triton.compile(
            ASTSource(kernel, signature, constants), target=GPUTarget("cuda", arch, 32), options={"num_warps": warps}
        )
        out[name] = compiled.metadata.shared
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--impls", nargs="+", default=["torch", "triton"], choices=("torch", "triton"))
    parser.add_argument("--rows", nargs="+", type=int, default=[2, 32, 256], help="rows N = batch × heads")
    parser.add_argument(
        "--configs", nargs="+", default=["2048:32:16", "2048:64:16", "2048:64:64"], metavar="T:D:C",
        help="sequence length, head size and chunk size",
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum timed seconds per row")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument(
        "--resources", nargs="+", type=int, metavar="D",
        help="no measurement: compile for --arch and print each kernel's shared memory for these head sizes",
    )
    parser.add_argument("--arch", type=int, default=90, help="CUDA architecture for --resources (90: Hopper)")
    args = parser.parse_args(argv)
    if args.resources:
        for depth in (2, 1):
            for dim in args.resources:
                row = {"depth": depth, "d": dim, "arch": args.arch} | shared_memory(depth, dim, args.arch)
                print(json.dumps(row), flush=True)
        return
    peak = peak_tflops(torch.cuda.get_device_name()) if args.device.startswith("cuda") else None
    rows = []
    for config in args.configs:
        seq, dim, chunk = map(int, config.split(":"))
        for n in args.rows:
            for impl in args.impls:
                row = {"impl": impl, "N": n, "T": seq, "d": dim, "c": chunk}
                try:
                    row |= measure(impl, n, seq, dim, chunk, args.device, args.seconds)
                except Exception as error:  # a row that fails (memory, compilation) is reported, not fatal
                    row["error"] = f"{type(error).__name__}: {error}"[:200]
                if peak and "tflops" in row:
                    row["fraction_of_fp32_peak"] = row["tflops"] / peak
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
