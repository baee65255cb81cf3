"""TensorBoard through Accelerate's trackers: the losses it records are those of metrics.jsonl."""

from __future__ import annotations

import json

import pytest
from test_training import items, settings, tiny_llama

from hercules.training import Trainer
from hercules.training.config import TrackingSettings

pytest.importorskip("tensorboard")


def test_tensorboard_records_the_training_losses(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracking = TrackingSettings(progress=False, plots=False, report_to=["tensorboard"], project="tb-test")
    Trainer(tiny_llama(), settings(max_steps=4), items(8), tmp_path, tracking=tracking).train()
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file was written"
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = {r["step"]: r["loss"] for r in logged if r.get("kind") == "train" and "loss" in r}
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = [t for t in acc.Tags()["scalars"] if t.endswith("loss") and "val" not in t]
    assert tags, acc.Tags()["scalars"]
    scalars = {e.step: e.value for e in acc.Scalars(tags[0])}
    assert len(train) == 4 and set(train) <= set(scalars)
    assert all(abs(scalars[s] - v) <= 1e-5 * max(1.0, abs(v)) for s, v in train.items())
