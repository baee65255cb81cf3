"""Checkpoints that lose nothing: atomic folders, last-N + best rotation, safetensors + JSON.

A checkpoint is a folder ``<run>/checkpoints/step-00000042/`` holding

* ``model.safetensors``: the trainable parameters (memory, injection, LoRA, ...); frozen backbone weights are not
  repeated, they come from the backbone itself;
* ``optimizer.safetensors`` + ``optimizer.json`` (AdamW moments and param groups);
* ``rng-rank<r>.safetensors`` + ``.json`` for every process (Python, NumPy, torch, CUDA generators);
* ``trainer_state.json``: step (which is also the data position), schedule, skipped steps, the validation loss
  and the step it was measured at;
* ``manifest.json``, written last: every file above with its size.

Crash safety, step by step: the folder is written as ``.step-00000042.tmp``, its files flushed to disk, then
renamed into place, so a complete folder is the only thing that ever carries a real name. ``index.json`` (replaced
atomically) is written next: it lists the kept checkpoints and names the latest and the best. Only then are the
checkpoints that rotation drops removed, each first renamed to ``.step-N.deleting``. A kill at any point leaves
the previous index naming complete folders, or the new one. :meth:`CheckpointManager.recover` (run at the start
of every training run) removes leftovers and re-registers a complete folder the index missed;
:meth:`CheckpointManager.latest` checks the folder it returns and falls back to the newest complete one, saying so.

A checkpoint never holds a non-finite tensor (:class:`NonFiniteCheckpoint`), and ``best`` is chosen only among
checkpoints whose validation loss was measured at their own step.

Examples:
    >>> from pathlib import Path; import tempfile
    >>> manager = CheckpointManager(Path(tempfile.mkdtemp()), keep_last=2, keep_best=True)
    >>> manager.latest() is None
    True
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from hercules.training.guards import nonfinite_tensors
from hercules.training.serialize import load_nested, rng_state, save_nested, write_json

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
REQUIRED = ("model.safetensors", "optimizer.safetensors", "optimizer.json", "trainer_state.json",
            "rng-rank0.safetensors", "rng-rank0.json")
_STEP = re.compile(r"step-(\d{8})")
_LEFTOVER = re.compile(r"\.(step-\d{8}\.(tmp|deleting)|index\.json\.tmp.*)")


class NonFiniteCheckpoint(ValueError):
    """A checkpoint would hold a NaN or infinite tensor; it is not written."""


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the trainable parameters by name (what a checkpoint stores)."""
    return {n: p.detach().cpu().contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` into the model's trainable parameters; every trainable parameter must be present."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing, unexpected = sorted(set(params) - set(state)), sorted(set(state) - set(params))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}; "
            f"resume with the same recipe (memory, injection and PEFT settings) that wrote it"
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(state[name].to(param.device, param.dtype))


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint (None when it is): missing manifest, file or size mismatch."""
    if not (folder / MANIFEST).exists():  # written before manifests existed: the files must all be there
        missing = [name for name in REQUIRED if not (folder / name).is_file()]
        return f"it lacks {', '.join(missing)}" if missing else None
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return f"its {MANIFEST} cannot be read"
    for name in REQUIRED:
        if name not in manifest:
            return f"its manifest lacks {name}"
    for name, size in manifest.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {size}"
    return None


def _fsync_folder(folder: Path) -> None:
    """Flush every file of ``folder`` and the folder itself to disk (a rename is only as durable as its data)."""
    for path in [*folder.iterdir(), folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        except OSError:  # some file systems cannot fsync a directory
            pass
        finally:
            os.close(fd)


def _own_val_loss(state: dict[str, Any], step: int) -> float | None:
    """The validation loss a checkpoint may be ranked by: only one measured at its own step, and finite."""
    loss = state.get("val_loss")
    if state.get("val_step") != step or loss is None or not math.isfinite(loss):
        return None
    return float(loss)


class CheckpointManager:
    """Saves, lists, rotates, checks and loads the checkpoints of one run folder.

    ``fault_hook(point)`` is called at every point of a save where a crash could happen (tests raise from it to
    simulate a kill there); the points are listed in :attr:`SAVE_POINTS`.
    """

    SAVE_POINTS = ("tmp-created", "rng-written", "model-written", "optimizer-written", "state-written",
                   "manifest-written", "renamed", "index-written", "retire-renamed", "retire-partial",
                   "retired")

    def __init__(self, root: Path, keep_last: int = 2, keep_best: bool = True,
                 fault_hook: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.keep_last, self.keep_best = keep_last, keep_best
        self.fault_hook = fault_hook or (lambda point: None)

    # ---- index -------------------------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        path = self.root / "index.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as err:
            logger.warning("cannot read %s (%s); looking at the checkpoint folders instead", path, err)
        return {"checkpoints": [], "latest": None, "best": None}

    def complete(self) -> list[Path]:
        """Every complete checkpoint folder under the root, oldest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if _STEP.fullmatch(p.name) and p.is_dir()]
        return sorted((p for p in found if checkpoint_problem(p) is None), key=lambda p: p.name)

    def latest(self) -> Path | None:
        """The index's latest checkpoint when it is complete, else the newest complete one (with a warning)."""
        name = self.index().get("latest")
        if name:
            problem = checkpoint_problem(self.root / name)
            if problem is None:
                return self.root / name
        complete = self.complete()
        fallback = complete[-1] if complete else None
        if name:
            logger.warning("the index names %s as latest, but %s; using %s, the newest complete checkpoint",
                           name, problem, fallback.name if fallback else "none (starting from step 0)")
        return fallback

    def best(self) -> Path | None:
        name = self.index().get("best")
        if name and checkpoint_problem(self.root / name) is None:
            return self.root / name
        if name:
            logger.warning("the index names %s as best, but it is not a complete checkpoint", name)
        return None

    # ---- saving ------------------------------------------------------------------------------------------
    def save(
        self,
        step: int,
        *,
        is_main: bool,
        rank: int,
        barrier: Callable[[], None],
        model_state: Callable[[], dict[str, torch.Tensor]],
        optimizer_state: Callable[[], dict],
        trainer_state: dict[str, Any],
        rng: dict[str, Any] | None = None,
    ) -> Path:
        """Write checkpoint ``step`` from every process (each writes its RNG state); returns its folder.

        Raises :class:`NonFiniteCheckpoint` (before writing anything) when a weight or optimizer tensor is NaN
        or infinite.
        """
        name = f"step-{step:08d}"
        tmp, final = self.root / f".{name}.tmp", self.root / name
        optim = optimizer_state()  # every process calls it: sharded optimizers gather collectively
        weights = model_state()
        bad = nonfinite_tensors(weights) + nonfinite_tensors(optim, "optimizer.")
        if bad:
            raise NonFiniteCheckpoint(
                f"checkpoint {name} not written: non-finite values in {', '.join(bad[:5])}"
                f"{' ...' if len(bad) > 5 else ''}; lower training.lr or set training.max_grad_norm"
            )
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self.fault_hook("tmp-created")
        barrier()
        save_nested(rng if rng is not None else rng_state(), tmp, f"rng-rank{rank}")
        if is_main:
            self.fault_hook("rng-written")
            save_file(weights, str(tmp / "model.safetensors"))
            self.fault_hook("model-written")
            save_nested(optim, tmp, "optimizer")
            self.fault_hook("optimizer-written")
            write_json(tmp / "trainer_state.json", trainer_state)
            self.fault_hook("state-written")
        barrier()
        if is_main:
            self._publish(tmp, final)
            self._register(name, step, _own_val_loss(trainer_state, step))
            logger.info("checkpoint saved: %s", final)
        barrier()
        return final

    def _publish(self, tmp: Path, final: Path) -> None:
        """Manifest, flush, rename into place."""
        write_json(tmp / MANIFEST, {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()})
        self.fault_hook("manifest-written")
        _fsync_folder(tmp)
        if final.exists():
            self._retire(final)
        tmp.rename(final)
        _fsync_folder(self.root)
        self.fault_hook("renamed")

    def _register(self, name: str, step: int, val_loss: float | None) -> None:
        index = self.index()
        entries = [e for e in index["checkpoints"] if e["name"] != name]
        entries.append({"name": name, "step": step, "val_loss": val_loss})
        self._write_index(entries, latest=name)

    def _write_index(self, entries: list[dict[str, Any]], latest: str | None) -> None:
        """Rotate: write the index of what is kept first, then remove what is not (a kill between is harmless)."""
        entries = sorted(entries, key=lambda e: e["step"])
        scored = [e for e in entries if e["val_loss"] is not None and math.isfinite(e["val_loss"])]
        best = min(scored, key=lambda e: (e["val_loss"], -e["step"]))["name"] if scored else None
        keep = {e["name"] for e in entries[-self.keep_last :]}
        if self.keep_best and best:
            keep.add(best)
        kept = [e for e in entries if e["name"] in keep]
        write_json(self.root / "index.json",
                   {"checkpoints": kept, "latest": latest, "best": best if best in keep else None})
        self.fault_hook("index-written")
        for entry in entries:
            if entry["name"] not in keep:
                self._retire(self.root / entry["name"])

    def _retire(self, folder: Path) -> None:
        """Remove a checkpoint folder so that no half-removed folder ever carries a checkpoint's name."""
        if not folder.exists():
            return
        doomed = folder.with_name(f".{folder.name}.deleting")
        shutil.rmtree(doomed, ignore_errors=True)
        folder.rename(doomed)
        self.fault_hook("retire-renamed")
        first = next(iter(sorted(doomed.iterdir())), None)
        if first is not None and first.is_file():
            first.unlink()
            self.fault_hook("retire-partial")
        shutil.rmtree(doomed, ignore_errors=True)
        self.fault_hook("retired")

    # ---- recovery ----------------------------------------------------------------------------------------
    def recover(self) -> None:
        """Make the folder consistent after a crash (call it from the main process, holding the run's lock).

        Removes temporary and half-removed folders and stale temporary index files, drops incomplete
        checkpoints, registers a complete checkpoint that a crash kept out of the index, and finishes a rotation
        that a crash interrupted.
        """
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if _LEFTOVER.fullmatch(path.name):
                logger.info("removing %s, left over by an interrupted save", path)
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        for path in self.root.iterdir():
            if _STEP.fullmatch(path.name) and path.is_dir() and (problem := checkpoint_problem(path)):
                logger.warning("removing %s: %s", path, problem)
                self._retire(path)
        index, complete = self.index(), self.complete()
        listed = {e["name"]: e for e in index.get("checkpoints", [])}
        entries = [listed.get(p.name) or self._entry_of(p) for p in complete]
        latest = complete[-1].name if complete else None
        if latest != index.get("latest") or {e["name"] for e in entries} != set(listed):
            if index.get("latest") and latest != index.get("latest"):
                logger.warning("index.json named %s as latest; the newest complete checkpoint is %s",
                               index.get("latest"), latest or "none")
            self._write_index(entries, latest)

    @staticmethod
    def _entry_of(folder: Path) -> dict[str, Any]:
        step = int(_STEP.fullmatch(folder.name).group(1))
        state = json.loads((folder / "trainer_state.json").read_text())
        return {"name": folder.name, "step": step, "val_loss": _own_val_loss(state, step)}

    # ---- loading -----------------------------------------------------------------------------------------
    def resolve(self, spec: str) -> Path:
        """A checkpoint folder from ``'latest'``, ``'best'`` or a path; a clear error if there is none."""
        if spec in ("latest", "best"):
            found = self.latest() if spec == "latest" else self.best()
            if found is None:
                raise FileNotFoundError(f"no {spec} checkpoint under {self.root}")
            return found
        path = Path(spec)
        if not (path / "trainer_state.json").exists():
            raise FileNotFoundError(f"{path} is not a checkpoint folder (it has no trainer_state.json)")
        problem = checkpoint_problem(path)
        if problem:
            raise FileNotFoundError(f"{path} is not a complete checkpoint: {problem}")
        return path

    @staticmethod
    def load(folder: Path, rank: int) -> dict[str, Any]:
        """Everything a checkpoint holds, for process ``rank`` (falls back to rank 0's RNG state)."""
        folder = Path(folder)
        rng_stem = f"rng-rank{rank}" if (folder / f"rng-rank{rank}.json").exists() else "rng-rank0"
        return {
            "model": load_file(str(folder / "model.safetensors")),
            "optimizer": load_nested(folder, "optimizer"),
            "trainer_state": json.loads((folder / "trainer_state.json").read_text()),
            "rng": load_nested(folder, rng_stem),
        }
