"""Benchmark of reading long BABILong contexts in segments: peak memory, time and accuracy against length.

A model with memory reads a context of any length segment by segment (attention sees one segment, the memory
carries the rest) and then answers the question, exactly as the evaluation does
(:func:`hercules.evaluation.segmented.segmented_answer`). What it holds at any time is one segment's activations
and the memory states, so its peak memory should not grow with the context. This benchmark measures that, for
each length, on a few generated samples:

- ``peak MiB``: the peak memory while reading and answering one sample, model weights included (CUDA: the
  allocator's peak; CPU: the process's peak resident set, reset before each sample through
  ``/proc/self/clear_refs``; an allocator that keeps freed memory makes a difference against the start
  meaningless there, so the whole is reported);
- ``s/sample`` and ``tok/s``: wall time per sample and context tokens read per second;
- ``accuracy``: BABILong's score of the answers (meaningful only for a trained model);
- ``full-attention peak MiB`` (``--full-attention-up-to``): for contrast, one forward pass of the backbone over the
  whole context and question (no segments), up to the given length.

The model is a folder saved by a recipe run (``runs/<name>/model``) or a fresh augmentation of a named backbone
(``--backbone``, memory as in :func:`hercules.augment`'s defaults with ``--layers``), which measures memory and
time but not accuracy.

Run: ``python -m hercules.bench.long_context --model runs/quickstart/model --lengths 1k 4k 16k 64k --samples 2``
(also ``hercules bench long_context ...``; ``--json out.json`` writes the rows).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from hercules.data.babilong import length_tokens

MIB = 2**20


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmHWM``: peak resident set; ``VmRSS``: resident set now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


class PeakMemory:
    """Peak memory during a block, on CUDA (allocated by torch) or (Linux) the CPU (the process's resident set):
    ``peak_bytes`` in all, ``added_bytes`` above what was held when the block started. Where the CPU's peak cannot
    be reset (``reset`` False), both count from the process's start: an upper bound."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = self.added_bytes = 0
        self.reset = True  # whether the peak was reset at the start (CPU: /proc/self/clear_refs writable)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
            except OSError:  # not Linux, or not allowed: VmHWM is then the peak since the process started
                self.reset = False
            self._start = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _status_kib("VmHWM") * 1024
        self.peak_bytes, self.added_bytes = peak, max(peak - self._start, 0)


def load_model(args: argparse.Namespace) -> tuple[torch.nn.Module, Any]:
    """The model to read with and its tokenizer: a saved run's model, or a backbone augmented afresh."""
    if args.model:
        from transformers import AutoTokenizer

        from hercules.injection.io import load_augmented

        model = load_augmented(args.model)
        return model, AutoTokenizer.from_pretrained(args.model)
    from hercules.injection.augment import augment
    from hercules.recipes.runner import load_backbone
    from hercules.recipes.schema import BackboneSettings

    backbone, tokenizer = load_backbone(BackboneSettings(name=args.backbone))
    return augment(backbone, {"layers": args.layers}).eval(), tokenizer


def read_rows(model: torch.nn.Module, tokenizer: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per length: peak memory, time and accuracy of reading its samples in segments."""
    from hercules.data.loaders import BabilongData, load_babilong
    from hercules.evaluation.report import progress_bar
    from hercules.evaluation.settings import EvalSettings

    device = torch.device(args.device)
    model.to(device).eval()
    settings = EvalSettings(tasks=[args.task], lengths=args.lengths, segment_length=args.segment_length,
                            few_shot=False, max_new_tokens=args.max_new_tokens)
    gen = {"max_new_tokens": args.max_new_tokens, "do_sample": False}
    cells = load_babilong(BabilongData(source="procedural"), [args.task], args.lengths, args.samples, tokenizer,
                          seed=args.seed)
    sizes = {id(s): len(tokenizer(s.context, add_special_tokens=False)["input_ids"]) for c in cells.values() for s in c}
    rows = []
    with progress_bar(args.progress, sum(sizes.values())) as advance:  # in context tokens: lengths differ a lot
        for length in args.lengths:
            samples = cells[(args.task, length)]
            rows.append(read_length(model, tokenizer, length, samples, sizes, settings, gen, advance, args))
    return rows


def read_length(model: torch.nn.Module, tokenizer: Any, length: str, samples: list, sizes: dict[int, int],
                settings: Any, gen: dict[str, Any], advance: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The row of one length: its samples read and answered one by one."""
    from hercules.evaluation.metrics import babilong_score
    from hercules.evaluation.segmented import segmented_answer

    device = torch.device(args.device)
    peaks, seconds, tokens, right = [], 0.0, 0, 0
    for sample in samples:
        with torch.no_grad(), PeakMemory(device) as peak:
            start = time.perf_counter()
            answer = segmented_answer(model, tokenizer, sample, settings, gen)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds += time.perf_counter() - start
        peaks.append(peak.peak_bytes)
        tokens += sizes[id(sample)]
        right += babilong_score(answer, sample.target, sample.question, sample.task)
        advance(sizes[id(sample)])
    mean_tokens = tokens // len(samples)
    row = {
        "length": length, "context_tokens": mean_tokens, "segments": -(-mean_tokens // args.segment_length),
        "samples": len(samples), "peak_mib": max(peaks) / MIB, "seconds_per_sample": seconds / len(samples),
        "tokens_per_s": tokens / seconds, "accuracy": 100 * right / len(samples),
    }
    if length_tokens(length) <= length_tokens(args.full_attention_up_to):
        row["full_attention_peak_mib"] = full_attention_peak(model, tokenizer, samples[0], device) / MIB
    return row


def full_attention_peak(model: torch.nn.Module, tokenizer: Any, sample: Any, device: torch.device) -> int:
    """Peak memory of one forward pass of the backbone (memory layers off) over the whole context and question."""
    from hercules.injection import memory_disabled

    ids = tokenizer(sample.context + "\n" + sample.question, return_tensors="pt")["input_ids"].to(device)
    with torch.no_grad(), memory_disabled(model), PeakMemory(device) as peak:
        model(ids, use_cache=False, logits_to_keep=1)
    return peak.peak_bytes


def render(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for name in ("length", "tokens", "segments", "peak MiB", "s/sample", "tok/s", "acc %", "full attn MiB"):
        table.add_column(name, justify="right")
    for r in rows:
        full = r.get("full_attention_peak_mib")
        table.add_row(r["length"], str(r["context_tokens"]), str(r["segments"]), f"{r['peak_mib']:.0f}",
                      f"{r['seconds_per_sample']:.1f}", f"{r['tokens_per_s']:.0f}", f"{r['accuracy']:.0f}",
                      "-" if full is None else f"{full:.0f}")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hercules bench long_context", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a saved model folder (runs/<name>/model)")
    parser.add_argument("--backbone", default="smollm2-135m", help="without --model: a backbone to augment afresh")
    parser.add_argument("--layers", type=int, nargs="+", default=[-2, -1], help="without --model: memory layers")
    parser.add_argument("--lengths", nargs="+", default=["1k", "4k", "16k", "64k"], help="BABILong lengths")
    parser.add_argument("--task", default="qa1", help="BABILong task")
    parser.add_argument("--samples", type=int, default=2, help="samples per length")
    parser.add_argument("--segment-length", type=int, default=256, help="tokens per segment")
    parser.add_argument("--max-new-tokens", type=int, default=12, help="answer length")
    parser.add_argument("--full-attention-up-to", default="0k",
                        help="also measure one whole-input forward of the backbone up to this length (0k: off)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated samples")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    for length in args.lengths + [args.full_attention_up_to]:
        length_tokens(length)  # a bad length fails here, before the model loads
    model, tokenizer = load_model(args)
    rows = read_rows(model, tokenizer, args)
    name = args.model or f"{args.backbone} (fresh memory in layers {args.layers})"
    Console().print(render(rows, f"{args.task} read in segments of {args.segment_length}: {name}"))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": name, "device": args.device, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
