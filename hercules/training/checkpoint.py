"""Checkpoints that lose nothing: atomic folders, last-N + best rotation, safetensors + JSON.

A checkpoint is a folder ``<run>/checkpoints/step-00000042/`` holding

* ``model.safetensors``: the trainable parameters (memory, injection, LoRA, ...); frozen backbone weights are not
  repeated, they come from the backbone itself;
* ``optimizer.safetensors`` + ``optimizer.json`` (AdamW moments and param groups);
* ``rng-rank<r>.safetensors`` + ``.json`` for every process (Python, NumPy, torch, CUDA generators);
* ``trainer_state.json``: step (which is also the data position), schedule, skipped steps, best
  validation loss.

It is written into ``.step-00000042.tmp`` and renamed into place once complete, so a crash never leaves a
half-written checkpoint under a real name; ``index.json`` (also replaced atomically) lists them and names the
latest and the best one by validation loss.

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
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from hercules.training.serialize import load_nested, rng_state, save_nested, write_json

logger = logging.getLogger(__name__)


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


class CheckpointManager:
    """Saves, lists, rotates and loads the checkpoints of one run folder."""

    def __init__(self, root: Path, keep_last: int = 2, keep_best: bool = True) -> None:
        self.root = Path(root)
        self.keep_last, self.keep_best = keep_last, keep_best

    # ---- index -------------------------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        path = self.root / "index.json"
        if path.exists():
            return json.loads(path.read_text())
        return {"checkpoints": [], "latest": None, "best": None}

    def latest(self) -> Path | None:
        name = self.index().get("latest")
        return self.root / name if name and (self.root / name).is_dir() else None

    def best(self) -> Path | None:
        name = self.index().get("best")
        return self.root / name if name and (self.root / name).is_dir() else None

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
        """Write checkpoint ``step`` from every process (each writes its RNG state); returns its folder."""
        name = f"step-{step:08d}"
        tmp, final = self.root / f".{name}.tmp", self.root / name
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier()
        save_nested(rng if rng is not None else rng_state(), tmp, f"rng-rank{rank}")
        optim = optimizer_state()  # every process calls it: sharded optimizers gather collectively
        weights = model_state()
        if is_main:
            save_file(weights, str(tmp / "model.safetensors"))
            save_nested(optim, tmp, "optimizer")
            write_json(tmp / "trainer_state.json", trainer_state)
        barrier()
        if is_main:
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            self._register(name, step, trainer_state.get("val_loss"))
            logger.info("checkpoint saved: %s", final)
        barrier()
        return final

    def _register(self, name: str, step: int, val_loss: float | None) -> None:
        index = self.index()
        entries = [e for e in index["checkpoints"] if e["name"] != name]
        entries.append({"name": name, "step": step, "val_loss": val_loss})
        entries.sort(key=lambda e: e["step"])
        scored = [e for e in entries if e["val_loss"] is not None and math.isfinite(e["val_loss"])]
        best = min(scored, key=lambda e: (e["val_loss"], -e["step"]))["name"] if scored else None
        keep = {e["name"] for e in entries[-self.keep_last :]}
        if self.keep_best and best:
            keep.add(best)
        for entry in entries:
            if entry["name"] not in keep:
                shutil.rmtree(self.root / entry["name"], ignore_errors=True)
        entries = [e for e in entries if e["name"] in keep]
        write_json(
            self.root / "index.json",
            {"checkpoints": entries, "latest": name, "best": best if best in keep else None},
        )

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
