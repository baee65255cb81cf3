"""The memory benchmark's bookkeeping (the measurements themselves are run by hand, not in tests)."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from hercules.bench import cli_startup
from hercules.bench import memory as bench


def _args(**overrides) -> argparse.Namespace:
    values = dict(
        impls=["fast", "titans"], device="cpu", compile=False, configs=[(512, 64, 16), (512, 64, 64)], quick=False,
        naive_max_len=512, rounds=3, threads=1, seconds=0.1, clock="process", timeout=10.0, count_ops=False,
    )
    return argparse.Namespace(**(values | overrides))


def test_rounds_interleave_rows_and_report_medians(monkeypatch):
    calls = []
    speeds = iter([10, 100, 20, 200, 30, 300, 40, 400, 50, 500, 60, 600])  # fast, titans, fast, titans, ...

    def worker(impl, configs, args):
        calls.append((impl, configs[0]))
        return [{"tokens_per_s": float(next(speeds)), "peak_mib": float(len(calls)), "steps": 1}]

    monkeypatch.setattr(bench, "_run_worker", worker)
    rows = bench.run(_args())
    # within a round, the rows of one configuration are measured one after the other
    assert calls[:4] == [("fast", (512, 64, 16)), ("titans", (512, 64, 16)), ("fast", (512, 64, 64)),
                         ("titans", (512, 64, 64))]
    assert calls[4:8] == calls[:4] and len(calls) == 12
    by_key = {(r["impl"], r["c"]): r for r in rows}
    assert by_key["fast", 16] | {"steps": 3} == {
        "impl": "fast", "T": 512, "d": 64, "c": 16, "tokens_per_s": 30, "peak_mib": 5, "steps": 3,
        "rounds": [10, 30, 50],
    }
    assert [by_key[k]["tokens_per_s"] for k in [("titans", 16), ("fast", 64), ("titans", 64)]] == [300, 40, 400]


def test_a_failed_round_makes_the_row_an_error(monkeypatch):
    results = iter([{"tokens_per_s": 1.0, "peak_mib": 1.0, "steps": 1}, {"error": "timed out after 10 s"}])
    monkeypatch.setattr(bench, "_run_worker", lambda impl, configs, args: [next(results)])
    (row,) = bench.run(_args(impls=["fast"], configs=[(512, 64, 16)], rounds=2))
    assert row["error"] == "timed out after 10 s" and "tokens_per_s" not in row


def test_configs_are_parsed_with_an_error_naming_the_format():
    assert bench._config("2048:256:64") == (2048, 256, 64)
    with pytest.raises(argparse.ArgumentTypeError, match="T:D:C"):
        bench._config("2048x256")


def test_kernel_count_leaves_out_views_and_counts_each_computing_operator():
    a, b = torch.randn(4, 3), torch.randn(3, 4)

    def step():
        c = (a @ b).t().reshape(-1)  # one matrix product; the transpose and reshape are views
        (c * 2 + 1).sum()  # three computing operators

    assert bench.count_kernels(step, "cpu") == 4


def test_model_flops_and_device_peaks():
    from hercules.bench._flops import memory_flops_per_token, peak_tflops

    # d = 256, h = 512: projections 8·256² and the chunk loop 18·256·512 per token forward, three times that trained
    assert memory_flops_per_token(256) == 3 * (8 * 256**2 + 18 * 256 * 512)
    assert memory_flops_per_token(256, heads=4) == 3 * (8 * 256**2 + 4 * 18 * 64 * 128)
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 67.0
    assert peak_tflops("NVIDIA H200", "bf16") == 989.4
    assert peak_tflops("Some Other GPU") is None


def test_segment_workload_carries_the_state_through_one_backward(monkeypatch):
    calls = []
    real_build = bench._build

    def build(*args):
        layer, call = real_build(*args)

        def traced(x, state):
            calls.append((x.shape[1], state is None))
            return call(x, state)

        return layer, traced

    monkeypatch.setattr(bench, "_build", build)
    bench.measure("fast", 32, 16, 8, min_seconds=0.0, max_steps=1, segments=4)
    # warm-up (16 tokens), full-size warm-up and one timed step: 4 calls each, a fresh state only at the first
    assert calls == [(4, True), (4, False), (4, False), (4, False)] + [(8, True), (8, False), (8, False), (8, False)] * 2


IMPORTTIME = """import time: self [us] | cumulative | imported package
import time:       100 |        150 |   _io
import time:       300 |        300 | encodings
import time:      1000 |       1000 |     torch._C
import time:      2000 |       3000 |   torch
import time:       500 |       3500 | hercules.cli.main
"""


def test_import_time_sums_the_top_level_imports_and_lists_every_module():
    seconds, modules = cli_startup.parse_importtime(IMPORTTIME)
    assert seconds == pytest.approx((300 + 3500) / 1e6)
    assert modules == {"_io", "encodings", "torch._C", "torch", "hercules.cli.main"}


def test_peak_memory_sees_an_allocation_and_long_context_rows_follow_the_segments(tmp_path):
    from hercules.bench import long_context

    with long_context.PeakMemory(torch.device("cpu")) as peak:
        block = torch.ones(32 * 2**20 // 4)  # 32 MiB, touched
        del block
    assert peak.peak_bytes >= peak.added_bytes + 50 * 2**20  # torch itself is resident
    assert peak.added_bytes >= 30 * 2**20 or not peak.reset  # without a reset the process's earlier peak may hide it
    out = tmp_path / "rows.json"
    long_context.main(["--backbone", "tiny:llama", "--layers", "0", "--lengths", "1k", "2k", "--samples", "1",
                       "--segment-length", "128", "--max-new-tokens", "2", "--full-attention-up-to", "1k",
                       "--json", str(out), "--no-progress"])
    rows = json.loads(out.read_text())["rows"]
    assert [r["length"] for r in rows] == ["1k", "2k"]
    for row in rows:  # generated contexts fill their length budget (byte tokens), read in segments of 128
        assert 0.8 * 1024 * int(row["length"][0]) <= row["context_tokens"] <= 1024 * int(row["length"][0])
        assert row["segments"] == -(-row["context_tokens"] // 128)
    assert "full_attention_peak_mib" in rows[0] and "full_attention_peak_mib" not in rows[1]
