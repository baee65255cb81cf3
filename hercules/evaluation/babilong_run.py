"""Command-line entry point for a BABILong evaluation, independent of the ``hercules`` CLI.

Run ``python -m hercules.evaluation.babilong_run --help``. The run is resumable: calling it again with the same
``--out`` and settings continues where it stopped.

Example (the measurement in the data/eval issue; the shared bAbI files and books, SmolLM2-135M-Instruct)::

    python -m hercules.evaluation.babilong_run --model smollm2-135m --tasks qa1,qa2,qa3,qa4,qa5 \\
        --lengths 0k,1k,2k --samples 100 --source babi --babi-dir ../shared/data/babi \\
        --background ../shared/data/books --rounds 10,25,50,100 --threads 1 --out /work/runs/smollm2-babilong
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from hercules.data.loaders import BabilongData
from hercules.evaluation.evaluator import evaluate_babilong
from hercules.evaluation.settings import EvalSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate a causal LM on BABILong.")
    parser.add_argument("--model", required=True, help="load_pretrained name, local folder or cached hub id")
    parser.add_argument(
        "--out", required=True, type=Path, help="run folder (results.json, predictions.jsonl, ...)"
    )
    parser.add_argument("--tasks", default="qa1,qa2,qa3,qa4,qa5", help="comma-separated tasks")
    parser.add_argument("--lengths", default="0k,1k,2k", help="comma-separated lengths")
    parser.add_argument("--samples", type=int, default=100, help="samples per task and length")
    parser.add_argument(
        "--rounds",
        default=None,
        help="comma-separated growing sample counts (e.g. 10,25,50,100): every task x length gets the first "
        "rounds first, so a run stopped early still fills the whole table",
    )
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=25)
    parser.add_argument("--segment-length", type=int, default=None)
    parser.add_argument("--source", default="procedural", choices=["babi", "procedural", "hub", "local"])
    parser.add_argument("--babi-dir", type=Path, default=None)
    parser.add_argument("--background", type=Path, nargs="*", default=None, help="text files or folders")
    parser.add_argument("--local-path", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    from hercules.backbones.pretrained import load_pretrained

    model, tokenizer = load_pretrained(args.model)
    data = BabilongData(
        source=args.source, babi_dir=args.babi_dir, background=args.background, local_path=args.local_path
    )
    settings = EvalSettings(
        tasks=args.tasks.split(","),
        lengths=args.lengths.split(","),
        samples_per_task=args.samples,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        segment_length=args.segment_length,
        data=data,
        seed=args.seed,
        progress=not args.no_progress,
    )
    rounds = [int(n) for n in args.rounds.split(",")] if args.rounds else [args.samples]
    for n in rounds:
        results = evaluate_babilong(
            model, tokenizer, settings.model_copy(update={"samples_per_task": n}), args.out
        )
    logging.getLogger(__name__).info("results in %s: %s", args.out, json.dumps(results["accuracy"]))
    return results


if __name__ == "__main__":
    main()
