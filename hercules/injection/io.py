"""Save and load augmented models: safetensors weights + a JSON description, no pickles, fully offline.

The model's own ``save_pretrained`` works too: :func:`~hercules.augment` records the augmentation in the HF config,
and :func:`load_augmented` rebuilds a model from such a folder (without PEFT, or after ``merge_and_unload``; a
plain ``AutoModelForCausalLM.from_pretrained`` would not know the memory layers).

A folder saved with :func:`save_augmented` holds ``hercules.json`` (format, the :class:`AugmentConfig`, the PEFT
settings, where the backbone comes from) and ``hercules.safetensors``. With ``with_backbone=True`` (default) the
backbone's HF config and all weights are saved, so the folder alone restores the model. With
``with_backbone=False`` only what augmentation and LoRA added is saved, and loading first loads the backbone with
:func:`~hercules.backbones.pretrained.load_pretrained` (a local folder, a cached hub id or a built-in name),
augments it and restores the added weights.

Examples:
    >>> import hercules, tempfile
    >>> from hercules.backbones.tiny import tiny_model
    >>> model = hercules.augment(tiny_model("llama"))
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_augmented(model, folder)
    >>> type(load_augmented(folder).model.layers[-1]).__name__
    'MAC'
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM

from hercules.injection.augment import augment, memory_parameters

logger = logging.getLogger(__name__)

FORMAT = "hercules.augmented/1"
META_FILE, WEIGHTS_FILE = "hercules.json", "hercules.safetensors"


def save_augmented(
    model: nn.Module, path: str | Path, *, with_backbone: bool = True, backbone: str | None = None,
    tokenizer: Any = None,
) -> Path:
    """Save an augmented (optionally PEFT-wrapped) ``model`` to the folder ``path``; returns the folder.

    Args:
        with_backbone: save every weight (default) or only the memory and LoRA weights.
        backbone: what ``load_pretrained`` should load when ``with_backbone=False`` (default: the backbone's
            ``name_or_path``).
        tokenizer: saved alongside when given (``AutoTokenizer.from_pretrained(path)`` then loads it).
    """
    base = _base_model(model)
    config = getattr(base, "hercules_config", None) or getattr(model, "hercules_config", None)
    if config is None:
        raise ValueError("model is not augmented (no hercules_config); call hercules.augment first")
    peft = getattr(model, "hercules_peft", None)
    if not with_backbone and peft is not None and peft.preset == "full":
        raise ValueError("preset 'full' trains the backbone: save with with_backbone=True")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "augment": config.model_dump(mode="json"),
        "peft": None if peft is None else peft.model_dump(mode="json"),
        "with_backbone": with_backbone,
        "backbone": backbone or str(getattr(base.config, "_name_or_path", "") or ""),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
    }
    if with_backbone:
        base.config.save_pretrained(folder)
        save_model(model, str(folder / WEIGHTS_FILE), metadata={"format": FORMAT})
    else:
        tensors = {n: p.detach().contiguous() for n, p in _added_parameters(model)}
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": FORMAT})
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def load_augmented(path: str | Path, backbone: str | None = None, dtype: torch.dtype | None = None) -> nn.Module:
    """Rebuild and restore a model saved by :func:`save_augmented`, or by the HF ``save_pretrained`` of an
    augmented model (without PEFT, or after ``merge_and_unload``), in eval mode.

    Args:
        backbone: backbone to load for a folder saved without it (overrides the recorded one).
        dtype: weight dtype (default: the saved one).
    """
    from hercules.injection.peft import apply_peft

    folder = Path(path)
    if not (folder / META_FILE).exists():
        return _load_hf_folder(folder, dtype)
    meta = json.loads((folder / META_FILE).read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{folder / META_FILE} has format {meta.get('format')!r}, expected {FORMAT!r}")
    dtype = dtype or getattr(torch, meta["dtype"])
    if meta["with_backbone"]:
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=dtype)
    else:
        from hercules.backbones.pretrained import load_pretrained

        source = backbone or meta["backbone"]
        if not source:
            raise ValueError(f"{folder} was saved without its backbone and records none: pass backbone=...")
        model, _ = load_pretrained(source, dtype=dtype)
    model = augment(model, meta["augment"])
    if meta["peft"] is not None:
        model = apply_peft(model, meta["peft"])
    _restore(model, folder / WEIGHTS_FILE, strict=meta["with_backbone"])
    return model.eval()


def _load_hf_folder(folder: Path, dtype: torch.dtype | None) -> nn.Module:
    """A folder written by ``save_pretrained``: config.json records the augmentation, the weights are HF's
    (one safetensors file, or shards with an index); weights HF leaves out because they are tied may be absent."""
    if not (folder / "config.json").exists():
        raise FileNotFoundError(
            f"{folder} holds neither {META_FILE} (save_augmented) nor config.json (save_pretrained)"
        )
    config = AutoConfig.from_pretrained(folder)
    recorded = getattr(config, "hercules", None)
    if not recorded:
        raise ValueError(
            f"{folder}/config.json records no augmentation: it is a plain backbone (load it with "
            f"AutoModelForCausalLM.from_pretrained) or a PEFT adapter (save_augmented keeps memory and LoRA)"
        )
    index = folder / "model.safetensors.index.json"
    files = ["model.safetensors"]
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    missing_files = [f for f in files if not (folder / f).exists()]
    if missing_files:
        raise FileNotFoundError(f"{folder} lacks {missing_files} (save_pretrained with safe_serialization)")
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state |= load_file(str(folder / name))
    dtype = dtype or next(t.dtype for t in state.values() if t.is_floating_point())
    model = augment(AutoModelForCausalLM.from_config(config, dtype=dtype), recorded["augment"])
    state = _as_model_keys(model, state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    if unexpected or set(missing) - tied:
        raise ValueError(
            f"{folder} does not match the rebuilt model: missing {sorted(set(missing) - tied)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    return model.eval()


def _as_model_keys(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the keys ``save_pretrained`` renamed for the checkpoint format (Gemma-3's image-text model
    writes ``language_model.model.*`` for ``model.language_model.*``) mapped back to the model's own names."""
    own = model.state_dict()
    if set(state) <= set(own):
        return state
    try:
        from transformers.core_model_loading import revert_weight_conversion
    except ImportError:  # releases without conversion mappings save the model's own names
        return state
    saved_to_own = {}
    for name, tensor in own.items():
        reverted = revert_weight_conversion(model, {name: tensor})
        if len(reverted) == 1:
            saved_to_own[next(iter(reverted))] = name
    return {saved_to_own.get(key, key): tensor for key, tensor in state.items()}


def _restore(model: nn.Module, file: Path, strict: bool) -> None:
    if strict:
        load_model(model, str(file), strict=True)
        return
    tensors = load_file(str(file))
    expected = {n for n, _ in _added_parameters(model)}
    if set(tensors) != expected:
        raise ValueError(
            f"{file} does not match the rebuilt model: missing {sorted(expected - set(tensors))[:5]}, "
            f"unexpected {sorted(set(tensors) - expected)[:5]}"
        )
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor)


def _added_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Parameters that augmentation and LoRA added (what a backbone-less save holds)."""
    added = dict(memory_parameters(model))
    added |= {n: p for n, p in model.named_parameters() if "lora_" in n}
    return sorted(added.items())


def _base_model(model: nn.Module) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model
