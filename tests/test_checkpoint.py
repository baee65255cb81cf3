"""Checkpoints: atomic folders, last-N + best rotation, safetensors/JSON round trips of optimizer and RNG."""

from __future__ import annotations

import json
import logging
import random
import shutil

import numpy as np
import pytest
import torch

from hercules.training.checkpoint import (
    CheckpointManager,
    NonFiniteCheckpoint,
    load_trainable_state,
    trainable_state,
)
from hercules.training.serialize import load_nested, rng_state, save_nested, set_rng_state


def save(manager: CheckpointManager, step: int, val_loss: float | None, optimizer_state=lambda: {}):
    return manager.save(step, is_main=True, rank=0, barrier=lambda: None,
                        model_state=lambda: {"w": torch.full((2,), float(step))},
                        optimizer_state=optimizer_state,
                        trainer_state={"step": step, "val_loss": val_loss, "val_step": step})


def test_rotation_keeps_last_n_and_the_best(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2, keep_best=True)
    for step, val in zip([1, 2, 3, 4, 5], [3.0, 1.0, 2.0, 4.0, 5.0], strict=True):
        save(manager, step, val)
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert names == ["step-00000002", "step-00000004", "step-00000005"]
    assert manager.latest().name == "step-00000005" and manager.best().name == "step-00000002"
    assert CheckpointManager.load(manager.best(), 0)["model"]["w"].tolist() == [2.0, 2.0]


def test_without_keep_best_only_last_n_survive(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1, keep_best=False)
    for step in range(1, 4):
        save(manager, step, 10.0 - step * (-1) ** step)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["step-00000003"]


def test_a_failed_save_leaves_the_previous_checkpoint_and_index_intact(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    save(manager, 1, 1.0)
    index_before = (tmp_path / "index.json").read_text()

    def broken():
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save(manager, 2, 0.5, optimizer_state=broken)
    assert not (tmp_path / "step-00000002").exists()
    assert (tmp_path / "index.json").read_text() == index_before
    assert manager.latest().name == "step-00000001"
    # the next successful save clears the half-written temporary folder
    save(manager, 2, 0.5)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_resolve_errors_name_the_problem(tmp_path):
    manager = CheckpointManager(tmp_path)
    with pytest.raises(FileNotFoundError, match="no latest checkpoint"):
        manager.resolve("latest")
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        manager.resolve(str(tmp_path))


def test_optimizer_state_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = torch.optim.AdamW([{"params": model[0].parameters(), "lr": 1e-2, "name": "a"},
                             {"params": model[1].parameters(), "lr": 1e-3, "name": "b"}], betas=(0.8, 0.9))
    for _ in range(3):
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    save_nested(opt.state_dict(), tmp_path, "optimizer")
    restored = load_nested(tmp_path, "optimizer")
    original = opt.state_dict()
    assert restored["param_groups"] == original["param_groups"]
    assert restored["state"].keys() == original["state"].keys()
    for idx, entry in original["state"].items():
        for key, value in entry.items():
            torch.testing.assert_close(restored["state"][idx][key], value, rtol=0, atol=0)
    fresh = torch.optim.AdamW([{"params": model[0].parameters()}, {"params": model[1].parameters()}])
    fresh.load_state_dict(restored)  # loads into a real optimizer, betas back as a tuple
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9) and fresh.param_groups[1]["lr"] == 1e-3


def test_rng_round_trip_replays_the_same_draws(tmp_path):
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    save_nested(rng_state(), tmp_path, "rng")
    first = (random.random(), float(np.random.rand()), torch.rand(3))
    set_rng_state(load_nested(tmp_path, "rng"))
    second = (random.random(), float(np.random.rand()), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_trainable_state_round_trip_and_mismatch_error():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model[0].requires_grad_(False)
    state = trainable_state(model)
    assert set(state) == {"1.weight", "1.bias"}
    other = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    other[0].requires_grad_(False)
    load_trainable_state(other, state)
    assert torch.equal(other[1].weight, model[1].weight)
    other[0].requires_grad_(True)
    with pytest.raises(ValueError, match=r"missing \['0.bias', '0.weight'\]"):
        load_trainable_state(other, state)


# ---- crash safety --------------------------------------------------------------------------------------------
def test_index_is_written_before_a_rotated_checkpoint_is_removed(tmp_path):
    seen = []

    def hook(point):
        if point == "retire-renamed":
            seen.append(json.loads((tmp_path / "index.json").read_text()))

    manager = CheckpointManager(tmp_path, keep_last=1, keep_best=False, fault_hook=hook)
    save(manager, 1, None)
    save(manager, 2, None)
    assert [i["latest"] for i in seen] == ["step-00000002"]  # the index named the new one before any deletion
    assert [e["name"] for e in seen[0]["checkpoints"]] == ["step-00000002"]


def test_latest_falls_back_to_the_newest_complete_checkpoint_and_says_so(tmp_path, caplog):
    manager = CheckpointManager(tmp_path, keep_last=3)
    for step in (1, 2, 3):
        save(manager, step, None)
    # as the old code left it: step 3 half deleted, then gone, while the index still names it
    (tmp_path / "step-00000003" / "rng-rank0.json").unlink()
    with caplog.at_level(logging.WARNING):
        assert manager.latest().name == "step-00000002"
        assert manager.resolve("latest").name == "step-00000002"
    assert "newest complete checkpoint" in caplog.text and "step-00000003" in caplog.text
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint: rng-rank0.json is missing"):
        manager.resolve(str(tmp_path / "step-00000003"))  # a folder named by path is checked too
    shutil.rmtree(tmp_path / "step-00000003")
    assert manager.latest().name == "step-00000002"
    # a complete folder that a crash kept out of the index is the newest complete one
    (tmp_path / "step-00000002").rename(tmp_path / "step-00000004")
    assert manager.latest().name == "step-00000004"


def test_recover_removes_leftovers_and_repairs_the_index(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1, keep_best=False)
    save(manager, 1, None)
    save(manager, 2, None)
    (tmp_path / ".step-00000003.tmp").mkdir()
    (tmp_path / ".step-00000001.deleting").mkdir()
    (tmp_path / ".index.json.tmp4242").write_text("{")
    shutil.copytree(tmp_path / "step-00000002", tmp_path / "step-00000003")  # renamed, index not yet written
    shutil.copytree(tmp_path / "step-00000002", tmp_path / "step-00000001")  # rotation not finished
    (tmp_path / "step-00000001" / "model.safetensors").unlink()
    manager.recover()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json", "step-00000003"]
    index = manager.index()
    assert index["latest"] == "step-00000003" and [e["name"] for e in index["checkpoints"]] == ["step-00000003"]


def test_a_checkpoint_with_a_non_finite_tensor_is_never_written(tmp_path):
    manager = CheckpointManager(tmp_path)
    with pytest.raises(NonFiniteCheckpoint, match="w"):
        manager.save(1, is_main=True, rank=0, barrier=lambda: None,
                     model_state=lambda: {"w": torch.tensor([1.0, float("inf")])},
                     optimizer_state=lambda: {}, trainer_state={"step": 1})
    with pytest.raises(NonFiniteCheckpoint, match="optimizer.state.0.exp_avg"):
        manager.save(1, is_main=True, rank=0, barrier=lambda: None, model_state=lambda: {"w": torch.ones(2)},
                     optimizer_state=lambda: {"state": {0: {"exp_avg": torch.tensor([float("nan")])}}},
                     trainer_state={"step": 1})
    assert list(tmp_path.iterdir()) == [] and manager.latest() is None


def test_best_is_chosen_only_among_checkpoints_validated_at_their_own_step(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1, keep_best=True)
    states = [(1, 3.0, 1), (2, 1.0, 0), (3, 2.0, 3), (4, 2.0, 3)]  # (step, last val loss, step it was measured)
    for step, val, val_step in states:
        manager.save(step, is_main=True, rank=0, barrier=lambda: None, model_state=lambda: {"w": torch.ones(1)},
                     optimizer_state=lambda: {}, trainer_state={"step": step, "val_loss": val, "val_step": val_step})
    assert manager.best().name == "step-00000003"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["step-00000003", "step-00000004"]
