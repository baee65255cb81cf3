"""``augment(model, config)``: give a Hugging Face causal LM neural memories in chosen decoder layers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from hercules.backbones.adapters import adapter_for
from hercules.injection.base import MemoryLayer
from hercules.injection.config import AugmentConfig
from hercules.injection.registry import INJECTIONS

logger = logging.getLogger(__name__)


def augment(model: nn.Module, config: AugmentConfig | dict[str, Any] | None = None) -> nn.Module:
    """Wrap the selected decoder layers of ``model`` in memory layers, in place; returns ``model``.

    The result trains, generates, saves and loads like the original HF model. At initialisation its outputs
    equal the backbone's exactly (every gate starts closed). The config is kept as ``model.hercules_config`` and in
    the HF config (``model.config.hercules``), so that ``model.save_pretrained`` records it.

    Examples:
        >>> import hercules
        >>> from hercules.backbones.tiny import tiny_model
        >>> model = hercules.augment(tiny_model("qwen3"), {"injection": {"kind": "mag"}, "layers": "all"})
        >>> [type(layer).__name__ for layer in model.model.layers]
        ['MAG', 'MAG']
    """
    config = config if isinstance(config, AugmentConfig) else AugmentConfig.model_validate(config or {})
    if memory_layers(model):
        raise ValueError("model is already augmented; augment the original backbone once")
    _require_causal(model)
    adapter = adapter_for(model)
    layers = adapter.decoder_layers(model)
    dim = adapter.hidden_size(model)
    for index, (memory, injection) in config.layer_settings(len(layers)).items():
        base = layers[index]
        reference = next(base.parameters())
        wrapper = INJECTIONS.get(injection.kind)(base, index, dim, memory, injection, adapter)
        layers[index] = wrapper.to(device=reference.device, dtype=reference.dtype)
    model.hercules_config = config
    model.register_forward_pre_hook(
        functools.partial(_track_padding, layers=list(memory_layers(model).values())), with_kwargs=True
    )
    # recorded in the HF config too, so that the model's own save_pretrained writes it to config.json and
    # load_augmented can rebuild the model from such a folder
    model.config.hercules = {"augment": config.model_dump(mode="json")}
    logger.info("augmented layers %s with %s", config.resolve_layers(len(layers)), config.injection.kind)
    return model


def _require_causal(model: nn.Module) -> None:
    """Refuse encoders and encoder-decoders: the memory reads tokens left to right beside causal attention."""
    config = getattr(model, "config", None)
    can_generate = getattr(model, "can_generate", None)
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    if encoder_decoder or (callable(can_generate) and not can_generate()):
        kind = "an encoder-decoder" if encoder_decoder else "not a causal (decoder-only) language model"
        raise ValueError(
            f"cannot augment {type(model).__name__} (model type {getattr(config, 'model_type', None)!r}): it is "
            f"{kind}. The memory reads the sequence left to right and needs a decoder-only causal LM; load one "
            "with AutoModelForCausalLM"
        )


def _track_padding(model: nn.Module, args: tuple, kwargs: dict[str, Any], layers: list[MemoryLayer]) -> None:
    """Before each call: tell the memory layers how much left padding each sample has in this call.

    Attention skips padded positions, but the memory reads every position as text, and a sample's chunks start at
    its first position. Outside training, a left-padded batch (batched generation, evaluation) therefore runs its
    memory sample by sample without the padding (:meth:`MemoryLayer.read_write`). Padding after the text cannot
    change the outputs at the text (the memory is causal) and needs nothing. In training the check is skipped:
    it needs the host to read the mask, and training batches are right-padded.
    """
    for layer in layers:
        layer.row_pads = None
    mask = kwargs.get("attention_mask")
    if torch.is_grad_enabled() or not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        return
    inputs = kwargs.get("input_ids", args[0] if args else None)
    inputs = inputs if inputs is not None else kwargs.get("inputs_embeds")
    if inputs is None:
        return
    text_later = mask.flip(-1).cummax(-1).values.flip(-1)  # 1 where some text comes at or after the position
    if not bool((text_later > mask).any()):
        return  # no padding before text
    pads = (mask[:, -inputs.shape[1] :] == 0).sum(-1).tolist()
    for layer in layers:
        if layer.runs_rows:
            layer.row_pads = pads
        elif not getattr(layer, "_padding_warned", False):
            layer._padding_warned = True
            logger.warning(
                "layer %d (%s) cannot run a left-padded batch sample by sample, so its memory reads the padding "
                "as text and padded samples differ from the same samples run alone; batch prompts of equal "
                "length (as the BABILong evaluator does) or use batch size 1",
                layer.layer_idx, type(layer).__name__,
            )


def memory_layers(model: nn.Module) -> dict[int, MemoryLayer]:
    """The memory layers of ``model`` by decoder-layer index."""
    return {m.layer_idx: m for m in model.modules() if isinstance(m, MemoryLayer)}


def memory_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """Named parameters added by augmentation (memories, gates, projections), not the wrapped backbone's."""
    for prefix, module in model.named_modules():
        if isinstance(module, MemoryLayer):
            for name, param in module.named_parameters():
                if not name.startswith("base_layer."):
                    yield f"{prefix}.{name}", param


def set_memory_enabled(model: nn.Module, enabled: bool) -> None:
    """Switch every memory layer on or off (off: each layer is exactly its base layer)."""
    for layer in memory_layers(model).values():
        layer.enabled = enabled


@contextmanager
def memory_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` as its backbone inside the block."""
    before = {i: m.enabled for i, m in memory_layers(model).items()}
    set_memory_enabled(model, False)
    try:
        yield model
    finally:
        for i, m in memory_layers(model).items():
            m.enabled = before.get(i, True)
