"""Weights & Biases through Accelerate's trackers, offline: the run it writes holds the losses of metrics.jsonl."""

from __future__ import annotations

import json

import pytest
from test_training import items, settings, tiny_llama

from hercules.training import Trainer
from hercules.training.config import TrackingSettings

pytest.importorskip("wandb")


def test_wandb_offline_run_records_the_training_losses(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # no account, no network: the run is written under WANDB_DIR
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracking = TrackingSettings(progress=False, plots=False, report_to=["wandb"], project="wandb-test")
    Trainer(tiny_llama(), settings(max_steps=4), items(8), tmp_path / "run", tracking=tracking).train()
    runs = list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 1, "no offline W&B run was written"
    # W&B keeps history values as JSON text inside its (uncompressed) run file, ready for `wandb sync`
    record = runs[0].read_bytes()
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logged if r["kind"] == "train"]
    assert len(losses) == 4
    assert all(json.dumps(loss).encode() in record for loss in losses)

