"""Backbone adapters as data: where a model's decoder layers live and what their parts are called.

A table keyed by ``config.model_type`` maps each supported family to an :class:`Adapter`. Injection strategies
use it to find the decoder layers to wrap and the attention module to hook; they never re-implement a block.
A model type missing from the table falls back to :func:`generic_adapter`, which accepts decoder models with the
common layout (``model.layers[i].self_attn``); anything else raises an error naming the model type and showing
how to register an adapter.

Examples:
    >>> from hercules.backbones.adapters import adapter_for
    >>> from hercules.backbones.tiny import tiny_model
    >>> model = tiny_model("gemma3")
    >>> adapter = adapter_for(model)
    >>> adapter.attention, len(adapter.decoder_layers(model))
    ('self_attn', 2)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from torch import nn

from hercules.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapter:
    """Names of a decoder family's parts (dotted paths from the model / from one decoder layer).

    Attributes:
        layers: path of the ``nn.ModuleList`` of decoder layers, from the ``*ForCausalLM`` model.
        attention: the self-attention module inside a layer (its input is the normalised hidden state).
        mlp: the feed-forward module inside a layer.
        input_norm: the norm before attention.
        post_attention_norm: the norm after attention (Gemma) or before the MLP (Llama, Qwen).
        extra_norms: further norms of the layer (Gemma-3's pre/post feed-forward norms).
        text_config: attribute of the config holding the text model's config, for multimodal wrappers.
        lora_targets: default LoRA target module names (attention and MLP projections).
    """

    layers: str = "model.layers"
    attention: str = "self_attn"
    mlp: str = "mlp"
    input_norm: str = "input_layernorm"
    post_attention_norm: str = "post_attention_layernorm"
    extra_norms: tuple[str, ...] = field(default_factory=tuple)
    text_config: str | None = None
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def decoder_layers(self, model: nn.Module) -> nn.ModuleList:
        """The decoder layers of ``model``, ``[num_layers]`` modules."""
        layers = _find(model, self.layers)
        if not isinstance(layers, nn.ModuleList):
            raise TypeError(f"{self.layers!r} of {type(model).__name__} is a {type(layers).__name__}, not a ModuleList")
        return layers

    def attention_of(self, layer: nn.Module) -> nn.Module:
        return layer.get_submodule(self.attention)

    def hidden_size(self, model: nn.Module) -> int:
        config = model.config
        if self.text_config is not None:
            config = getattr(config, self.text_config)
        return config.hidden_size


ADAPTERS: Registry[Adapter] = Registry("backbone adapter")


def register_adapter(model_type: str, adapter: Adapter) -> Adapter:
    """Add ``adapter`` to the table under ``model_type`` (an HF ``config.model_type``)."""
    return ADAPTERS.register(model_type)(adapter)


_LLAMA_LIKE = Adapter()
_GEMMA3 = Adapter(extra_norms=("pre_feedforward_layernorm", "post_feedforward_layernorm"))
for _name in ("llama", "mistral", "qwen2", "qwen3"):
    register_adapter(_name, _LLAMA_LIKE)
register_adapter("gemma3_text", _GEMMA3)
register_adapter("gemma3", Adapter(
    layers="model.language_model.layers",
    extra_norms=_GEMMA3.extra_norms,
    text_config="text_config",
))

_GENERIC_PATHS = ("model.layers", "model.language_model.layers", "model.decoder.layers", "transformer.h")
_GENERIC_ATTENTION = ("self_attn", "attn", "attention")


def _find(model: nn.Module, path: str) -> nn.Module:
    """``model.get_submodule(path)``, also through PEFT wrappers (``base_model.model``)."""
    for root in (model, getattr(getattr(model, "base_model", None), "model", None)):
        if root is None:
            continue
        try:
            return root.get_submodule(path)
        except AttributeError:
            continue
    raise AttributeError(f"{type(model).__name__} has no submodule {path!r}")


def generic_adapter(model: nn.Module) -> Adapter | None:
    """An adapter guessed from the common decoder layout, or ``None`` when the model does not follow it."""
    for path in _GENERIC_PATHS:
        try:
            layers = _find(model, path)
        except AttributeError:
            continue
        if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
            continue
        layer = getattr(layers[0], "base_layer", layers[0])  # an augmented model's layers wrap the originals
        for attention in _GENERIC_ATTENTION:
            if isinstance(getattr(layer, attention, None), nn.Module):
                return Adapter(layers=path, attention=attention, lora_targets=_projection_names(layer))
    return None


def _projection_names(layer: nn.Module) -> tuple[str, ...]:
    """Names of the linear projections of a decoder layer (LoRA's default targets for a generic-layout model):
    ``nn.Linear`` and GPT-2-style ``Conv1D`` modules."""
    names = {name.rsplit(".", 1)[-1] for name, module in layer.named_modules()
             if name and (isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D")}
    return tuple(sorted(names))


def adapter_for(model: nn.Module) -> Adapter:
    """The adapter of ``model`` from the table by ``config.model_type``, else the generic fallback."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in ADAPTERS:
        return ADAPTERS.get(model_type)
    adapter = generic_adapter(model)
    if adapter is None:
        raise ValueError(
            f"no backbone adapter for model type {model_type!r} ({type(model).__name__}) and it does not follow "
            f"the common decoder layout (layers at one of {', '.join(_GENERIC_PATHS)}, attention named one of "
            f"{', '.join(_GENERIC_ATTENTION)}). Register one: "
            f"hercules.backbones.adapters.register_adapter({model_type!r}, Adapter(layers=..., attention=...)); "
            f"known types: {', '.join(ADAPTERS.names())}"
        )
    logger.info("model type %r is not in the adapter table; using the generic layout %s", model_type, adapter)
    return adapter
