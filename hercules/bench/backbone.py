"""Benchmark of augmented backbones: training-step and decode time of MAC / MAL / MAG against the plain backbone.

For each backbone (a tiny in-process Llama and SmolLM2-135M by default; ``smollm2-135m-random`` is SmolLM2-135M's
architecture with random weights, for machines that its weights do not reach) and each variant (the backbone, then
MAC, MAL and MAG with memory in two decoder layers), in one run:

- ``step``: forward + backward of a causal-LM loss on a ``[B, T]`` batch, all parameters trainable;
- ``decode``: time per generated token with the KV cache (greedy ``generate`` of N tokens after a short
  prompt, minus the time of generating one token, divided by N − 1).

With ``--segments N`` each variant also runs segment training (``segments``): ``N`` segments of ``T`` tokens
(``--segment-length``) with the memory state carried (not detached), the loss summed over all of them and one
backward; the backbone runs the same segments independently. ``--backend`` picks the memory's chunk loop
(``MemoryConfig.backend``: auto, torch or triton).

Variants are measured in interleaved rounds (backbone, MAC, MAL, MAG, backbone, ...) and the median is
reported, so that load from other processes hits all of them alike; ratios are against the backbone of the same
run. Targets: step ≤ 1.3× and decode ≤ 1.15× the backbone.

Run: ``python -m hercules.bench.backbone`` (``--models tiny``, ``--rounds 5``, ``--threads 1``, ``--json out.json``;
``--clock process`` measures this process's CPU time, which other processes on a shared CPU disturb less).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

VARIANTS = ("backbone", "mac", "mac-out", "mal", "mag")
INJECTIONS = {"mac-out": {"kind": "mac", "write": "attention_output"}}  # MAC writing the attention output
TARGETS = {"step": 1.3, "decode": 1.15, "segments": 1.2}


@dataclass(frozen=True)
class Setting:
    """One backbone and its workload."""

    name: str
    batch: int
    seq_len: int
    prompt_len: int
    new_tokens: int


SETTINGS = {
    "tiny": Setting("tiny", batch=4, seq_len=256, prompt_len=32, new_tokens=32),
    "smollm2-135m": Setting("smollm2-135m", batch=1, seq_len=512, prompt_len=32, new_tokens=32),
    "smollm2-135m-random": Setting("smollm2-135m-random", batch=1, seq_len=512, prompt_len=32, new_tokens=32),
}

# SmolLM2-135M's architecture (its config.json), for timing where its weights cannot be loaded: on a GPU machine
# that the 98 MB GGUF file does not reach, say. Times do not depend on the weights' values.
SMOLLM2_135M_CONFIG = dict(
    hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
    vocab_size=49152, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
    tie_word_embeddings=True,
)


def load_backbone(name: str) -> nn.Module:
    if name == "tiny":
        from hercules.backbones.tiny import tiny_model

        return tiny_model("llama", num_hidden_layers=4)
    if name == "smollm2-135m-random":
        from transformers import AutoModelForCausalLM, LlamaConfig

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return AutoModelForCausalLM.from_config(LlamaConfig(**SMOLLM2_135M_CONFIG), dtype=torch.float32)
    from hercules.backbones.pretrained import load_pretrained

    return load_pretrained(name)[0]


def build_variant(name: str, variant: str, memory: dict) -> nn.Module:
    import hercules

    model = load_backbone(name)
    if variant != "backbone":
        torch.manual_seed(0)
        injection = INJECTIONS.get(variant, variant)
        model = hercules.augment(model, {"injection": injection, "layers": [1, -2], "memory": memory})
    return model


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}
_clock = time.perf_counter
_device = torch.device("cpu")
_autocast: torch.dtype | None = None  # --precision bf16: steps and decoding under torch.autocast


def _precision():
    return torch.autocast(_device.type, dtype=_autocast or torch.float32, enabled=_autocast is not None)


def _sync() -> None:
    if _device.type == "cuda":
        torch.cuda.synchronize(_device)


def _timed(fn: Callable[[], object]) -> float:
    _sync()
    start = _clock()
    fn()
    _sync()
    return _clock() - start


def step_fn(model: nn.Module, ids: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        with _precision():
            loss = model(ids, labels=ids, use_cache=False).loss
        loss.backward()

    return step


def segments_fn(model: nn.Module, ids: torch.Tensor, length: int, memory: bool) -> Callable[[], None]:
    """Segment training on ``ids`` in segments of ``length``: the memory carried through one backward."""
    from hercules.injection.segments import segmented_forward

    def step() -> None:
        model.zero_grad(set_to_none=True)
        with _precision():
            if memory:
                loss = segmented_forward(model, ids, length, labels=ids).loss
            else:
                windows = ids.split(length, dim=1)
                loss = sum(model(w, labels=w, use_cache=False).loss for w in windows) / len(windows)
        loss.backward()

    return step


def decode_fns(model: nn.Module, prompt: torch.Tensor, new_tokens: int) -> tuple[Callable, Callable]:
    def generate(n: int) -> Callable[[], None]:
        @torch.no_grad()
        def run() -> None:
            with _precision():
                model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)

        return run

    return generate(1), generate(new_tokens)


def measure(
    setting: Setting, rounds: int, memory: dict, segments: int = 0, segment_length: int = 256
) -> dict[str, dict[str, float]]:
    """Median step and per-token decode seconds of every variant (and with ``segments`` the segment-training
    step), measured in interleaved rounds."""
    models = {v: build_variant(setting.name, v, memory).to(_device) for v in VARIANTS}
    vocab = models["backbone"].config.vocab_size
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, min(vocab, 250), (setting.batch, setting.seq_len), generator=gen).to(_device)
    prompt = ids[:1, : setting.prompt_len]
    steps = {v: step_fn(m.train(), ids) for v, m in models.items()}
    decodes = {v: decode_fns(m, prompt, setting.new_tokens) for v, m in models.items()}
    long_ids = torch.randint(3, min(vocab, 250), (setting.batch, segments * segment_length), generator=gen)
    segs = {v: segments_fn(m, long_ids.to(_device), segment_length, v != "backbone") for v, m in models.items()}
    for v in VARIANTS:  # warm-up
        steps[v]()
        if segments:
            segs[v]()
        models[v].eval()
        decodes[v][1]()
    samples: dict[str, dict[str, list[float]]] = {v: {"step": [], "decode": []} for v in VARIANTS}
    for _ in range(rounds):
        for v in VARIANTS:
            models[v].train()
            samples[v]["step"].append(_timed(steps[v]))
            if segments:
                samples[v].setdefault("segments", []).append(_timed(segs[v]))
            models[v].eval()
            one, many = decodes[v]
            per_token = (_timed(many) - _timed(one)) / (setting.new_tokens - 1)
            samples[v]["decode"].append(per_token)
    return {v: {k: statistics.median(x) for k, x in s.items()} for v, s in samples.items()}


def render(results: dict[str, dict[str, dict[str, float]]], settings: dict[str, Setting]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Augmented vs plain backbone: memory in 2 layers, median of interleaved rounds")
    precision = "bf16 autocast" if _autocast is not None else "fp32"
    table.caption = (
        f"device: {_device}, {precision}, clock: {_clock.__name__}, torch threads: {torch.get_num_threads()}"
    )
    segments = any("segments" in r for per_variant in results.values() for r in per_variant.values())
    columns = ["backbone", "step / decode", "variant", "step ms", "step ×", "decode ms/token", "decode ×"]
    columns += ["segments ms", "segments ×"] if segments else []
    for column in columns:
        table.add_column(column, justify="right" if "ms" in column or "×" in column else "left")
    for name, per_variant in results.items():
        s = settings[name]
        base = per_variant["backbone"]
        for v, r in per_variant.items():
            ratio = {k: r[k] / base[k] for k in TARGETS if k in r}
            mark = {k: "" if v == "backbone" else (" ✓" if ratio[k] <= TARGETS[k] else " ✗") for k in ratio}
            cells = [f"{r['step'] * 1e3:.1f}", f"{ratio['step']:.2f}{mark['step']}"]
            cells += [f"{r['decode'] * 1e3:.2f}", f"{ratio['decode']:.2f}{mark['decode']}"]
            if segments:
                cells += [f"{r['segments'] * 1e3:.1f}", f"{ratio['segments']:.2f}{mark['segments']}"]
            table.add_row(name, f"B{s.batch} T{s.seq_len} / {s.new_tokens} tok", v, *cells)
    Console(width=120).print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hercules bench backbone", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["tiny", "smollm2-135m"], choices=list(SETTINGS),
        help="backbones to measure (smollm2-135m-random: SmolLM2-135M's shape, random weights, nothing to load)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds (median taken)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--chunk-size", type=int, default=16, help="memory chunk size")
    parser.add_argument("--heads", type=int, default=4, help="memory heads (each of size hidden / heads)")
    parser.add_argument(
        "--segments", type=int, default=0, help="also time segment training over this many segments (0: off)"
    )
    parser.add_argument("--segment-length", type=int, default=256, help="tokens per segment for --segments")
    parser.add_argument(
        "--backend", choices=("auto", "torch", "triton"), default="auto", help="the memory's chunk-loop backend"
    )
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (timings synchronise the device)")
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32",
        help="bf16: training steps and decoding under torch.autocast(bfloat16), weights in fp32",
    )
    parser.add_argument(
        "--cuda-graphs", action="store_true",
        help="memory.cuda_graphs: training steps replay the memory as CUDA graphs",
    )
    parser.add_argument(
        "--clock", choices=list(CLOCKS), default="wall",
        help="wall time, or this process's CPU time (steadier on a shared CPU; use with --threads 1)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    global _clock, _device, _autocast
    _clock, _device = CLOCKS[args.clock], torch.device(args.device)
    _autocast = torch.bfloat16 if args.precision == "bf16" else None
    if _device.type == "cuda" and args.clock == "process":
        parser.error("--clock process measures host CPU time; use --clock wall with --device cuda")
    memory = {
        "chunk_size": args.chunk_size, "heads": args.heads, "cuda_graphs": args.cuda_graphs, "backend": args.backend
    }
    results = {
        name: measure(SETTINGS[name], args.rounds, memory, args.segments, args.segment_length) for name in args.models
    }
    render(results, SETTINGS)
    if args.json:
        payload = {"settings": {n: asdict(SETTINGS[n]) for n in args.models}, "memory": memory,
                   "threads": torch.get_num_threads(), "clock": args.clock, "device": str(_device),
                   "precision": args.precision, "results": results}
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)


if __name__ == "__main__":
    main()
