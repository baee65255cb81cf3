"""What trains: presets over the memory, LoRA on the backbone (peft) and the full model.

- ``memory``: only what augmentation added (memories, gates, MAC projections) trains; the backbone is frozen.
- ``memory_lora``: the memory plus LoRA adapters on the backbone's projections (default targets come from the
  backbone adapter table; any module names may be given). The memory modules are never LoRA targets.
- ``full``: every parameter trains.

Examples:
    >>> import hercules
    >>> from hercules.backbones.tiny import tiny_model
    >>> model = hercules.augment(tiny_model("llama"), {"layers": [0]})
    >>> model = apply_peft(model, PeftSettings(preset="memory_lora", lora_r=4))
    >>> sorted({n.split(".")[-2] for n, p in model.named_parameters() if p.requires_grad} & {"lora_A", "to_qkv"})
    ['lora_A', 'to_qkv']
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # PeftSettings is part of the recipe schema, which validates without torch
    from torch import nn

logger = logging.getLogger(__name__)


class PeftSettings(BaseModel):
    """Which parameters train (see the module docstring) and the LoRA hyper-parameters."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    preset: Literal["memory", "memory_lora", "full"] = Field(
        "memory_lora", description="memory: memory only; memory_lora: memory + LoRA on the backbone; full: all."
    )
    lora_r: int = Field(8, ge=1, le=65536, description="LoRA rank.")
    lora_alpha: float = Field(16.0, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] | Literal["all-linear"] | None = Field(
        None, description="LoRA target module names as the backbone names them (a name or a dotted suffix, such as "
        "q_proj or layers.28.self_attn.q_proj; a layer with memory is matched too); default: the backbone adapter's "
        "attention and MLP projections.",
    )


def apply_peft(model: nn.Module, settings: PeftSettings | dict | None = None) -> nn.Module:
    """Set what trains on an augmented ``model``; returns it (a ``peft.PeftModel`` for ``memory_lora``).

    The settings are kept as ``hercules_peft`` on the returned model (used by :func:`~hercules.injection.io.save_augmented`).
    """
    from hercules.injection.augment import memory_parameters

    settings = settings if isinstance(settings, PeftSettings) else PeftSettings.model_validate(settings or {})
    if settings.preset == "memory_lora":
        model = _add_lora(model, settings)
    for param in model.parameters():
        param.requires_grad_(settings.preset == "full")
    if settings.preset == "memory_lora":
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.requires_grad_(True)
    for _, param in memory_parameters(model):
        param.requires_grad_(True)
    model.hercules_peft = settings
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("preset %s: %d trainable parameters", settings.preset, trainable)
    return model


def _add_lora(model: nn.Module, settings: PeftSettings) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    from hercules.backbones.adapters import adapter_for

    config = getattr(model, "hercules_config", None)
    targets = settings.target_modules or list(adapter_for(model).lora_targets)
    if isinstance(targets, list):
        targets = lora_target_names(model, targets)
    lora = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=targets,
        exclude_modules=memory_module_names(model),
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft (0.21) reads transformers' deprecated ``is_gradient_checkpointing`` property, which warns on every
        # call; the value it reads is the same as ``is_activation_checkpointing``'s, so only the warning is dropped.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, lora)
    peft_model.hercules_config = config
    return peft_model


def lora_target_names(model: nn.Module, targets: list[str]) -> list[str]:
    """The full module names that ``targets`` name, read on the backbone's own names: a decoder layer wrapped by a
    memory layer keeps its modules under ``base_layer``, which a target need not spell, so one list of targets
    means the same modules with and without memory (a twin without memory gets the same LoRA). A target may also
    spell ``base_layer``. Raises ``ValueError`` naming a target that matches no module."""
    from hercules.injection.base import MemoryLayer

    wrapped = [f"{prefix}.base_layer." for prefix, m in model.named_modules() if isinstance(m, MemoryLayer)]
    excluded = set(memory_module_names(model))
    spellings = {}  # each module's name and its name as the backbone spells it
    for name, _ in model.named_modules():
        if name and name not in excluded:
            plain = name
            for prefix in wrapped:
                plain = plain.replace(prefix, prefix.removesuffix("base_layer."))
            spellings[name] = {name, plain}
    names: list[str] = []
    for target in targets:
        found = [name for name, spelled in spellings.items()
                 if any(n == target or n.endswith(f".{target}") for n in spelled)]
        if not found:
            raise ValueError(
                f"peft.target_modules: {target!r} names no module of this model; give a module name such as "
                f"q_proj, or a dotted path as the backbone names it, such as layers.0.self_attn.q_proj"
            )
        names += [n for n in found if n not in names]
    return names


def memory_module_names(model: nn.Module) -> list[str]:
    """Full names of every module added by augmentation (excluded from LoRA)."""
    from hercules.injection.base import MemoryLayer

    names = []
    for prefix, module in model.named_modules():
        if isinstance(module, MemoryLayer):
            names += [f"{prefix}.{n}" for n, _ in module.named_modules() if n and not n.startswith("base_layer")]
    return names
