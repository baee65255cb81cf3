"""Benchmark of one memory layer: forward + backward tokens/s and peak memory, against baselines in one run.

Compared, for each configuration (B = 2, T, d, chunk size c, a depth-2 MLP memory with expansion 2):

- ``fast``: Hercules' chunked path in torch (``MemoryConfig(backend="torch")``);
- ``triton``: the same chunk loop as fused Triton kernels (``backend="triton"``: one launch forward, one backward
  per call; CUDA only, or Triton's interpreter);
- ``fast-compile``: the same with ``MemoryConfig(compile=True)`` (``torch.compile`` of the per-chunk step; asked
  for with ``--compile`` or by naming it in ``--impls``);
- ``fast-graph`` (CUDA only, measured by default there): the fast path replayed as CUDA graphs
  (``MemoryConfig(cuda_graphs=True)``: one capture per input shape, in the untimed warm-up steps);
- ``naive``: Hercules' token-by-token reference (same semantics);
- ``titans``: ``titans_pytorch.NeuralMemory`` 0.5.5 in its default mode, which takes every gradient at the
  initial weights of the call (an approximation: fast because it never reads its own updated state);
- ``titans-bs``: the same with ``batch_size=c``, which updates the weights every chunk (our semantics).

On CPU each measurement runs in its own process, so that the resident-set high-water mark is that
configuration's alone; on CUDA one process per implementation measures all configurations (the allocator's peak
is reset between them), which saves the start-up of a process per row. The table gives ratios against the fast
path measured in the same run. Peak memory is what the full-size steps add on top of the
memory in use after a short warm-up step: the CUDA allocator's peak on GPU, the resident-set high-water mark
(``VmHWM``) on CPU.

``--segments N`` measures segment training instead: each step runs the sequence as ``N`` calls with the memory
state carried from one to the next (not detached), then one backward through all of them; ``--configs 2048:64:16
--segments 8`` is 8 segments of 256. On CUDA the table adds the model TFLOP/s of each row and its fraction of the
device's float32 peak (:mod:`hercules.bench._flops`).

Run: ``python -m hercules.bench.memory`` (``--quick`` for a smaller grid, ``--device cuda``, ``--compile``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import product
from statistics import median

import torch

from hercules.bench._flops import memory_flops_per_token, peak_tflops

IMPLS = ("fast", "fast-compile", "fast-graph", "triton", "naive", "titans", "titans-bs")
BATCH = 2


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _build(impl: str, dim: int, chunk: int, device: str):
    """A layer and a function ``(x, state) → (y, state)`` for one implementation (``state`` ``None`` at first)."""
    if impl.startswith("titans"):
        from titans_pytorch import NeuralMemory as TitansMemory

        layer = TitansMemory(
            dim=dim,
            chunk_size=chunk,
            batch_size=chunk if impl == "titans-bs" else None,
            default_model_kwargs={"depth": 2, "expansion_factor": 2.0},
        ).to(device)
        return layer, lambda x, state: layer(x, state=state)
    from hercules.memory import MemoryConfig, NeuralMemory

    if impl == "fast-graph" and not device.startswith("cuda"):
        raise ValueError(f"fast-graph replays CUDA graphs and needs a CUDA device, not {device}")
    config = MemoryConfig(
        model={"kind": "mlp", "depth": 2, "expansion": 2.0},
        chunk_size=chunk,
        implementation="naive" if impl == "naive" else "chunked",
        compile=impl == "fast-compile",
        cuda_graphs=impl == "fast-graph",  # the layer captures once per input shape and replays
        backend="triton" if impl == "triton" else "torch",
    )
    layer = NeuralMemory(dim, config).to(device)
    if impl == "triton":
        from hercules.memory.backend import triton_spec
        from hercules.ops.triton_chunk import supports

        if not supports(triton_spec(layer.model), dict(layer.model.initial)):
            raise ValueError(f"the Triton kernels do not support d={dim} (the torch path would run)")
    return layer, lambda x, state: layer(x, state)


# Operators that only make views, read metadata or dispatch to others: not counted as kernels on CPU.
_NOT_KERNELS = {
    f"aten::{name}"
    for name in [
        "view", "as_strided", "select", "slice", "transpose", "unsqueeze", "squeeze", "expand", "reshape",
        "_reshape_alias", "flatten", "unflatten", "permute", "t", "unbind", "alias", "view_as", "_unsafe_view",
        "empty", "empty_like", "empty_strided", "resolve_conj", "resolve_neg", "detach", "lift_fresh",
        "result_type", "to", "_to_copy", "matmul", "linear", "contiguous", "split", "chunk", "movedim", "narrow",
        "split_with_sizes", "expand_as", "reshape_as",
    ]
}


def count_kernels(step: Callable[[], None], device: str) -> int:
    """How many kernels one call of ``step`` launches: on CUDA the device kernels the profiler records; on CPU
    the innermost ATen operators that compute (views, casts that do not copy and dispatching wrappers left out).
    On a GPU where launches, not arithmetic, set the pace, this is what a step costs."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.startswith("cuda")
    with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
        step()
        if cuda:
            torch.cuda.synchronize()
    events = prof.events()
    if cuda:
        return sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    parents = {id(e.cpu_parent) for e in events if e.cpu_parent is not None and e.name.startswith("aten::")}
    return sum(1 for e in events if e.name.startswith("aten::") and id(e) not in parents and e.name not in _NOT_KERNELS)


def measure(
    impl: str,
    seq: int,
    dim: int,
    chunk: int,
    device: str = "cpu",
    min_seconds: float = 3.0,
    max_steps: int = 20,
    clock: str = "wall",
    count_ops: bool = False,
    segments: int = 1,
) -> dict:
    """Tokens/s of forward + backward and peak memory (MiB) of one configuration, in this process, and with
    ``count_ops`` the kernels one step launches (:func:`count_kernels`, after the timed steps). With
    ``segments`` > 1 a step is that many calls, the state carried, and one backward.

    ``clock="process"`` divides by the process's CPU time instead of wall time: on a shared machine that is
    what stays comparable between runs (with one thread it is the single-core throughput).
    """
    torch.manual_seed(0)
    layer, call = _build(impl, dim, chunk, device)
    x = torch.randn(BATCH, seq, dim, device=device)

    def forward(x: torch.Tensor) -> torch.Tensor:
        ys, state = [], None
        for piece in x.chunk(segments, dim=1):
            y, state = call(piece, state)
            ys.append(y)
        return torch.cat(ys, dim=1)

    def step() -> None:
        forward(x).square().mean().backward()
        layer.zero_grad(set_to_none=True)

    cuda = device.startswith("cuda")
    # A short step first loads lazily initialised libraries; the memory baseline is taken after it, and the
    # peak (a high-water mark since process start) then belongs to the full-size steps.
    forward(x[:, : 2 * chunk]).square().mean().backward()
    layer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()  # so that several configurations can share one process
    else:
        base = _rss_bytes()
    step()  # warm-up at full size (and compilation)
    if cuda:
        torch.cuda.synchronize()
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while steps < max_steps and (steps == 0 or time.perf_counter() - start < min_seconds):
        step()
        steps += 1
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.process_time() - cpu_start if clock == "process" else time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() if cuda else _peak_rss_bytes()) - base
    row = {"tokens_per_s": BATCH * seq * steps / elapsed, "peak_mib": peak / 2**20, "steps": steps}
    return row | ({"ops_per_step": count_kernels(step, device)} if count_ops else {})


def _run_worker(impl: str, configs: list[tuple[int, int, int]], args: argparse.Namespace) -> list[dict]:
    """Measure ``configs`` of ``impl`` in a fresh process; one error row per configuration if it fails."""
    cmd = [sys.executable, "-m", "hercules.bench.memory", "--worker", impl, *(f"{t}:{d}:{c}" for t, d, c in configs)]
    cmd += ["--device", args.device, "--threads", str(args.threads), "--seconds", str(args.seconds)]
    cmd += ["--clock", args.clock, "--segments", str(args.segments)] + (["--count-ops"] if args.count_ops else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout * len(configs))
    except subprocess.TimeoutExpired:
        return [{"error": f"timed out after {args.timeout * len(configs):.0f} s"} for _ in configs]
    if out.returncode != 0:
        return [{"error": (out.stderr.strip().splitlines() or ["failed"])[-1]} for _ in configs]
    return json.loads(out.stdout.strip().splitlines()[-1])


def grid(quick: bool) -> list[tuple[int, int, int]]:
    if quick:
        return [(512, 64, 16), (512, 256, 64)]
    return list(product((512, 2048), (64, 256), (16, 64)))


def _median_row(results: list[dict]) -> dict:
    """One row from several rounds: the medians, and every round's tokens/s (errors win: one is reported)."""
    errors = [r for r in results if "error" in r]
    if errors:
        return errors[0]
    speeds = sorted(r["tokens_per_s"] for r in results)
    return {
        "tokens_per_s": median(speeds),
        "peak_mib": median(r["peak_mib"] for r in results),
        "steps": sum(r["steps"] for r in results),
        **({"ops_per_step": results[0]["ops_per_step"]} if "ops_per_step" in results[0] else {}),
        "rounds": [round(x) for x in speeds],
    }


def run(args: argparse.Namespace) -> list[dict]:
    """All rows, ordered by configuration then implementation; with several rounds, each row is the median."""
    from rich.progress import track

    impls = args.impls or [i for i in IMPLS if i not in ("fast-compile", "fast-graph", "triton")]
    if args.impls is None and args.device.startswith("cuda"):
        impls = ["fast", "fast-graph", "triton", *impls[1:]]
    impls = list(dict.fromkeys([*impls, *(["fast-compile"] if args.compile else [])]))
    configs = args.configs or grid(args.quick)
    wanted = {impl: [c for c in configs if impl != "naive" or c[0] <= args.naive_max_len] for impl in impls}
    jobs = []
    for _ in range(args.rounds):
        if args.device.startswith("cuda"):  # one process per implementation
            jobs += [(impl, cfgs) for impl, cfgs in wanted.items() if cfgs]
        else:  # one process per row (the resident-set high-water mark cannot be reset), the rows of a
            # configuration one after the other, so that a change in the machine's load hits them alike
            jobs += [(impl, [c]) for c in configs for impl in impls if c in wanted[impl]]
    results: dict[tuple, list[dict]] = {}
    for impl, cfgs in track(jobs, description="benchmarking", transient=True):
        for cfg, result in zip(cfgs, _run_worker(impl, cfgs, args), strict=True):
            results.setdefault((impl, cfg), []).append(result)
            row = {"impl": impl, "T": cfg[0], "d": cfg[1], "c": cfg[2]} | result
            print(json.dumps(row), flush=True)  # a log line per measurement as it arrives
    return [
        {"impl": impl, "T": cfg[0], "d": cfg[1], "c": cfg[2]} | _median_row(results[impl, cfg])
        for cfg in configs
        for impl in impls
        if (impl, cfg) in results
    ]


def table(rows: list[dict], title: str, peak: float | None = None):
    """A rich table with the fast path's speed-up and memory ratio against each baseline (and the kernels per
    step where they were counted; with a device ``peak`` in TFLOP/s, each row's model TFLOP/s and its fraction).
    """
    from rich.table import Table

    fast = {(r["T"], r["d"], r["c"]): r for r in rows if r["impl"] == "fast" and "error" not in r}
    ops = any("ops_per_step" in r for r in rows)
    out = Table(title=title)
    columns = ("impl", "T", "d", "c", "tokens/s", "peak MiB", "fast speed-up ×", "fast / its memory")
    columns += ("kernels/step",) if ops else ()
    columns += ("TFLOP/s", "% of peak") if peak else ()
    for col in columns:
        out.add_column(col, justify="right")
    for r in rows:
        key = (r["T"], r["d"], r["c"])
        if "error" in r:
            out.add_row(r["impl"], *map(str, key), "error: " + r["error"][:60], *[""] * (len(columns) - 5))
            continue
        ref = fast.get(key)
        speed = f"{ref['tokens_per_s'] / r['tokens_per_s']:.2f}" if ref and r["impl"] != "fast" else ""
        mem = f"{ref['peak_mib'] / max(r['peak_mib'], 1e-9):.2f}" if ref and r["impl"] != "fast" else ""
        extra = (str(r.get("ops_per_step", "")),) if ops else ()
        if peak:
            tflops = r["tokens_per_s"] * memory_flops_per_token(r["d"]) / 1e12
            extra += (f"{tflops:.3f}", f"{100 * tflops / peak:.2f}")
        out.add_row(r["impl"], *map(str, key), f"{r['tokens_per_s']:.0f}", f"{r['peak_mib']:.1f}", speed, mem, *extra)
    return out


def _config(text: str) -> tuple[int, int, int]:
    try:
        seq, dim, chunk = map(int, text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected T:D:C such as 512:64:16, got {text!r}") from None
    return seq, dim, chunk


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hercules bench memory", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs="+", metavar="IMPL T:D:C", help=argparse.SUPPRESS)
    parser.add_argument(
        "--impls", nargs="+", default=None, choices=IMPLS,
        help="implementations to measure (default: all but fast-compile, which --compile adds, and fast-graph, "
        "which is measured by default on CUDA only)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per configuration")
    parser.add_argument(
        "--naive-max-len", type=int, default=512, help="skip the (slow) reference above this T"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds per configuration before giving up"
    )
    parser.add_argument("--compile", action="store_true", help="also measure fast-compile (torch.compile)")
    parser.add_argument(
        "--clock",
        choices=("wall", "process"),
        default="wall",
        help="time by wall clock, or by the process's CPU time (steadier on a busy machine)",
    )
    parser.add_argument("--quick", action="store_true", help="two configurations instead of eight")
    parser.add_argument(
        "--configs", nargs="+", type=_config, metavar="T:D:C", help="these configurations instead of the grid"
    )
    parser.add_argument(
        "--count-ops", action="store_true",
        help="also count the kernels one step launches (what sets the pace where launches do, as on a GPU)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every row this many times, interleaved; report medians"
    )
    parser.add_argument(
        "--segments", type=int, default=1,
        help="segment training: each step is this many calls with the state carried, then one backward",
    )
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.worker:
        impl, *configs = args.worker
        rows = []
        for cfg in configs:
            seq, dim, chunk = _config(cfg)
            rows.append(
                measure(
                    impl, seq, dim, chunk, args.device, min_seconds=args.seconds, clock=args.clock,
                    count_ops=args.count_ops, segments=args.segments,
                )
            )
        print(json.dumps(rows))
        return
    from rich.console import Console

    rows = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    title = f"memory layer, B={BATCH}, {args.device}, {args.threads} threads, {args.clock} clock"
    if args.segments > 1:
        title += f", {args.segments} segments per step, state carried"
    if args.rounds > 1:
        title += f", median of {args.rounds} interleaved rounds"
    peak = None
    if args.device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(args.device))
        peak = peak_tflops(name)
        title += f", {name}" + (f" (float32 peak {peak} TFLOP/s)" if peak else "")
    Console(width=160).print(table(rows, title, peak))


if __name__ == "__main__":
    main()
