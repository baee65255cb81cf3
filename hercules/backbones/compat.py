"""Differences between the transformers 5.x releases that Hercules supports.

The KV cache argument of models and decoder layers is called ``cache`` in recent releases and
``past_key_values`` in earlier ones (5.17, for example). A ``cache=`` given to a model that expects
``past_key_values`` is swallowed by its ``**kwargs`` without an error, so callers that pass a cache by keyword ask
:func:`cache_argument` for the name (a wrapped decoder layer, :func:`cache_key`). Activation checkpointing is switched on by
``activation_checkpointing_enable`` in recent releases and ``gradient_checkpointing_enable`` before.

Examples:
    >>> from hercules.backbones.tiny import tiny_model
    >>> cache_argument(tiny_model("llama")) in ("cache", "past_key_values")
    True
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn


def cache_argument(model: nn.Module | Any) -> str:
    """The keyword under which ``model.forward`` (and ``generate``) takes the KV cache."""
    forward = getattr(model, "forward", model)
    names = inspect.signature(forward).parameters
    if "cache" in names:
        return "cache"
    if "past_key_values" in names:
        return "past_key_values"
    inner = getattr(model, "get_base_model", None) or getattr(model, "get_decoder", None)
    if inner is not None and inner() is not model:
        return cache_argument(inner())
    return "cache"


def cache_key(kwargs: dict[str, Any], layer: nn.Module) -> str:
    """The keyword under which a decoder ``layer`` receives the KV cache in a call with ``kwargs``: the one the
    caller passed, else the one the layer's signature names (for a cache the wrapper creates itself)."""
    for name in ("cache", "past_key_values"):
        if name in kwargs:
            return name
    return cache_argument(layer)


def enable_activation_checkpointing(model: nn.Module | Any) -> bool:
    """Turn on the model's activation (gradient) checkpointing under whichever name the release gives it;
    ``False`` if the model has none."""
    for name in ("activation_checkpointing_enable", "gradient_checkpointing_enable"):
        method = getattr(model, name, None)
        if method is not None:
            method()
            return True
    return False
