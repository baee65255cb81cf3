"""Run folders under faults: a kill at every point of a save, non-finite updates, idle runs, locks, reuse, paths."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os

import pytest
import torch
from lock_helpers import held_by_another_process
from test_training import QUIET, items, params, settings, tiny_llama

from hercules.training import Trainer, TrainingDiverged
from hercules.training.checkpoint import CheckpointManager
from hercules.training.run_folder import RunFolderInUse, RunFolderLocked


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the trainer catches it, so no cleanup code runs."""


def crash_settings(**kw):
    base = dict(max_steps=4, grad_accumulation=1,
                checkpoint={"every": 1, "keep_last": 1, "keep_best": False, "save_final": True})
    return settings(**(base | kw))


def trained(run_dir, resume=None, hook=None, data=None):
    s = crash_settings(resume=resume)
    trainer = Trainer(tiny_llama(seed=7 if resume else 0, dropout=0.2), s, data or items(10), run_dir,
                      tracking=QUIET)
    if hook is not None:
        trainer.checkpoints.fault_hook = lambda point: hook(trainer, point)
    trainer.train()
    return trainer


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, and the points one save with a rotation passes through."""
    points = []
    trainer = trained(tmp_path_factory.mktemp("ref"), hook=lambda t, p: points.append(p) if t.state.step == 3 else 0)
    return params(trainer.unwrapped_model()), points


def test_a_save_passes_every_fault_point(reference):
    assert reference[1] == list(CheckpointManager.SAVE_POINTS)


@pytest.mark.parametrize("point", CheckpointManager.SAVE_POINTS)
def test_a_kill_at_any_point_of_a_save_resumes_exactly(tmp_path, reference, point):
    def kill(trainer, at):
        if trainer.state.step == 3 and at == point:
            raise Killed(at)

    with pytest.raises(Killed):
        trained(tmp_path, hook=kill)
    published = CheckpointManager.SAVE_POINTS.index(point) >= CheckpointManager.SAVE_POINTS.index("renamed")
    resumed = Trainer(tiny_llama(seed=7, dropout=0.2), crash_settings(resume="latest"), items(10), tmp_path,
                      tracking=QUIET)
    assert resumed.state.step == (3 if published else 2)  # the newest complete checkpoint
    ckpt = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpt.iterdir()) == ["index.json", f"step-0000000{resumed.state.step}"]
    resumed.train()
    final = params(resumed.unwrapped_model())
    for name, tensor in reference[0].items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=0, msg=name)
    steps = [r["step"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())]
    assert steps == [1, 2, 3, 4]


def test_an_update_that_makes_weights_non_finite_stops_before_any_save(tmp_path):
    s = crash_settings().model_copy(update={"lr": float("inf")})  # a recipe can no longer say so; the guard stays
    trainer = Trainer(tiny_llama(), s, items(10), tmp_path, tracking=QUIET)
    with pytest.raises(TrainingDiverged, match=r"step 1 made trainable weights non-finite.*last good checkpoint: none"):
        trainer.train()
    assert not any((tmp_path / "checkpoints").iterdir())
    with pytest.raises(ValueError, match="lr"):
        settings(lr=float("inf"))
    with pytest.raises(ValueError, match="eps"):
        settings(eps=float("inf"))


def warnings_of(caplog, tmp_path, **update):
    s = settings(max_steps=5, weight_decay=0.0).model_copy(update=update)
    with caplog.at_level(logging.WARNING, logger="hercules.training.trainer"):
        Trainer(tiny_llama(), s, items(10), tmp_path, tracking=QUIET).train()
    return caplog.text


def test_a_run_whose_updates_are_zero_warns(tmp_path, caplog):
    assert "changed no trainable weight" in warnings_of(caplog, tmp_path, eps=float("inf"))


def test_a_run_stuck_at_the_uniform_loss_warns(tmp_path, caplog):
    assert "uniform guess over 64 tokens" in warnings_of(caplog, tmp_path, lr=1e6)


def test_a_healthy_run_does_not_warn(tmp_path, caplog):
    text = warnings_of(caplog, tmp_path)
    assert "uniform guess" not in text and "changed no trainable weight" not in text


def test_best_comes_from_checkpoints_validated_at_their_own_step(tmp_path):
    s = settings(max_steps=4, grad_accumulation=1, eval_every=2, lr=1e-5,
                 checkpoint={"every": 1, "keep_last": 1, "keep_best": True})
    trainer = Trainer(tiny_llama(), s, items(10), tmp_path, val_items=items(4, seed=2), tracking=QUIET)
    trainer.train()
    best = trainer.checkpoints.best()
    state = json.loads((best / "trainer_state.json").read_text())
    assert best.name in ("step-00000002", "step-00000004") and state["val_step"] == state["step"]


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder(tmp_path):
    with held_by_another_process(tmp_path) as pid, pytest.raises(RunFolderLocked, match=f"process {pid} on "):
        Trainer(tiny_llama(), settings(max_steps=1), items(4), tmp_path, tracking=QUIET)
    assert not (tmp_path / "checkpoints").exists()
    Trainer(tiny_llama(), settings(max_steps=1), items(4), tmp_path, tracking=QUIET).train()  # the lock is free


def test_a_fresh_run_into_a_used_folder_is_refused(tmp_path):
    trained(tmp_path)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    with pytest.raises(RunFolderInUse, match="--resume"):
        Trainer(tiny_llama(), crash_settings(), items(10), tmp_path, tracking=QUIET)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


def test_an_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    (tmp_path / "checkpoints").write_text("not a folder")
    with pytest.raises(PermissionError, match="cannot write to .*checkpoints"):
        Trainer(tiny_llama(), settings(max_steps=1), items(4), tmp_path, tracking=QUIET)
    assert not (tmp_path / "metrics.jsonl").exists()
    if os.geteuid() != 0:  # root writes anywhere
        os.remove(tmp_path / "checkpoints")
        (tmp_path / "checkpoints").mkdir(mode=0o555)
        with pytest.raises(PermissionError, match="cannot write"):
            Trainer(tiny_llama(), settings(max_steps=1), items(4), tmp_path, tracking=QUIET)


# ---- the recipe runner -------------------------------------------------------------------------------------
TRAIN_RECIPE = {"name": "r", "backbone": {"name": "tiny:llama"}, "data": {"kind": "babilong", "samples": 2},
                "training": {"max_steps": 1}, "tracking": {"progress": False, "plots": False}}


@pytest.mark.parametrize("name", ["../../escape", "/abs/run", "a/../../b", "..", "", "a//b"])
def test_run_names_stay_inside_output_dir(name):
    from hercules.recipes.schema import Recipe

    with pytest.raises(ValueError, match="inside output_dir"):
        Recipe.model_validate(TRAIN_RECIPE | {"name": name})
    assert Recipe.model_validate(TRAIN_RECIPE | {"name": "group/run-1.b"}).run_dir().parts[-2:] == ("group", "run-1.b")


def test_the_runner_refuses_a_fresh_training_run_into_a_used_folder_before_writing(tmp_path):
    from hercules.recipes.runner import run_recipe
    from hercules.recipes.schema import Recipe

    run = tmp_path / "r"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "kind": "train"}\n')
    (run / "recipe.yaml").write_text("the earlier run's recipe")
    with pytest.raises(RunFolderInUse, match="metrics.jsonl"):
        run_recipe(Recipe.model_validate(TRAIN_RECIPE | {"output_dir": str(tmp_path)}))
    assert (run / "recipe.yaml").read_text() == "the earlier run's recipe"


def test_the_runner_holds_the_lock_for_the_whole_run(tmp_path, monkeypatch):
    from hercules.recipes import runner
    from hercules.recipes.schema import Recipe

    seen = []

    def fake_run(recipe, console, run_dir):
        seen.append(json.loads((run_dir / "run.lock").read_text())["pid"])
        return {}

    monkeypatch.setattr(runner, "_run", fake_run)
    runner.run_recipe(Recipe.model_validate(TRAIN_RECIPE | {"output_dir": str(tmp_path)}))
    assert seen == [os.getpid()]
    other = multiprocessing.get_context("fork").Process(target=_take_lock, args=(tmp_path / "r",))
    other.start()
    other.join(30)
    assert other.exitcode == 0  # released afterwards: another process can take it


def _take_lock(folder):
    import fcntl

    with open(folder / "run.lock") as handle:  # a new open file: the kernel's lock, not this process's table
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_metrics_line_torn_by_a_kill_does_not_stop_the_resume(tmp_path, reference):
    first = Trainer(tiny_llama(dropout=0.2), crash_settings(), items(10), tmp_path, tracking=QUIET)
    first.train(stop_at_step=2)
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 3, "kind": "tr')  # killed while writing step 3's record
    resumed = trained(tmp_path, resume="latest")
    steps = [r["step"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())]
    assert steps == [1, 2, 3, 4]
    final = params(resumed.unwrapped_model())
    for name, tensor in reference[0].items():
        torch.testing.assert_close(final[name], tensor, rtol=0, atol=0, msg=name)
