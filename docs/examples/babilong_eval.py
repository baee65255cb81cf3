"""Evaluate a model on BABILong from Python: results.json, predictions.jsonl and a heatmap in the run folder."""

import tempfile
from pathlib import Path

from hercules.backbones.tiny import tiny_model
from hercules.backbones.tokenizer import byte_tokenizer
from hercules.data import BabilongData
from hercules.evaluation import EvalSettings, evaluate_babilong

settings = EvalSettings(
    tasks=["qa1"],
    lengths=["0k", "1k"],
    samples_per_task=2,
    max_new_tokens=4,
    data=BabilongData(source="procedural"),  # offline stand-in; use source="babi" or "hub" for real numbers
    progress=False,
)
model = tiny_model("llama")  # any HF causal LM, with memory or without; a tiny random one here

with tempfile.TemporaryDirectory() as out:
    results = evaluate_babilong(model, byte_tokenizer(), settings, out)
    files = sorted(p.name for p in Path(out).iterdir())

print(files, results["accuracy"])  # accuracy[task][length] in [0, 1] under the BABILong metric
assert results["counts"]["qa1"]["1k"] == 2
assert {"results.json", "predictions.jsonl"} <= set(files)
