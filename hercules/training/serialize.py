"""Optimizer and RNG states as safetensors + JSON (never pickle).

A torch optimizer's ``state_dict()`` is a nest of tensors and plain values. :func:`split_state` puts every tensor
in a flat ``{"a.b.c": tensor}`` table (for safetensors) and leaves a JSON skeleton with ``{"__tensor__": key}``
placeholders; :func:`join_state` rebuilds the nest. Integer dict keys (the optimizer's parameter indices) survive the
trip through JSON as ``{"__int_keys__": ...}``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def split_state(
    obj: Any, prefix: str = "", tensors: dict[str, torch.Tensor] | None = None
) -> tuple[Any, dict]:
    """(JSON-able skeleton, flat tensor table) of a nested state."""
    tensors = {} if tensors is None else tensors
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}, tensors
    if isinstance(obj, dict):
        int_keys = all(isinstance(k, int) for k in obj) and len(obj) > 0
        body = {
            str(k): split_state(v, f"{prefix}.{k}" if prefix else str(k), tensors)[0] for k, v in obj.items()
        }
        return ({"__int_keys__": body} if int_keys else body), tensors
    if isinstance(obj, (list, tuple)):
        items = [split_state(v, f"{prefix}.{i}", tensors)[0] for i, v in enumerate(obj)]
        return ({"__tuple__": items} if isinstance(obj, tuple) else items), tensors
    return obj, tensors


def join_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_state`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            return tensors[skeleton["__tensor__"]]
        if set(skeleton) == {"__int_keys__"}:
            return {int(k): join_state(v, tensors) for k, v in skeleton["__int_keys__"].items()}
        if set(skeleton) == {"__tuple__"}:
            return tuple(join_state(v, tensors) for v in skeleton["__tuple__"])
        return {k: join_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [join_state(v, tensors) for v in skeleton]
    return skeleton


def save_nested(state: Any, folder: Path, stem: str) -> None:
    """Write ``state`` as ``stem.safetensors`` (tensors) + ``stem.json`` (everything else)."""
    skeleton, tensors = split_state(state)
    save_file(tensors, str(folder / f"{stem}.safetensors"))
    write_json(folder / f"{stem}.json", skeleton)


def load_nested(folder: Path, stem: str) -> Any:
    tensors = load_file(str(folder / f"{stem}.safetensors"))
    return join_state(json.loads((folder / f"{stem}.json").read_text()), tensors)


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states of this process."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states captured by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state(
        (
            npst["kind"],
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
