"""The frozen prefix of a segment-trained model, computed once: decoder layers below the first one that trains.

When LoRA and the memory sit in the top layers only (``layers: [-2, -1]``), every layer below them is frozen and
reads one segment at a time with no memory, so the hidden state entering the first trained layer is a fixed
function of the segment's tokens. Training for several epochs on the same items recomputes it at every visit;
:class:`FrozenPrefix` keeps it instead, keyed by the segment's tokens and mask, and the model runs only its
suffix (the prefix's layers are taken out of the layer list and the first suffix layer reads the kept hidden
state). On SmolLM2-135M with trained layers 28-29 a segment then costs 2 of its 30 layers.

The result equals the uncached loss and gradients (the same layers on the same inputs; a batched row may differ
by the float rounding of a different matrix blocking). The cost is memory: ``tokens × hidden size`` floats per
distinct segment, kept on the CPU (1000 qa1 stories of about 200 tokens on SmolLM2: 0.5 GB).

Examples:
    >>> import torch, hercules
    >>> from hercules.backbones.tiny import tiny_model
    >>> model = hercules.augment(tiny_model("llama"), {"layers": [-1]})
    >>> FrozenPrefix.start_of(model)
    1
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from rich.progress import track
from torch import Tensor, nn

from hercules.backbones.adapters import adapter_for
from hercules.training.loss import segment_adds_to_loss


class FrozenPrefix:
    """Hidden states entering decoder layer ``start``, per segment, computed on first use.

    Args:
        model: the model being trained (PEFT- or DDP-wrapped is fine).
        start: the first decoder layer that trains or holds a memory (:meth:`start_of`).
    """

    def __init__(self, model: nn.Module, start: int) -> None:
        adapter = adapter_for(_unwrap(model))
        self.layers = adapter.decoder_layers(_unwrap(model))
        self.config = _owner_config(_unwrap(model), adapter.layers)
        if not 0 < start < len(self.layers):
            raise ValueError(f"frozen prefix: layer {start} leaves no frozen layer below it or none to train "
                             f"(the model has {len(self.layers)} decoder layers)")
        self.start = start
        self.cache: dict[bytes, Tensor] = {}
        self._check_frozen(model)

    @staticmethod
    def start_of(model: nn.Module) -> int | None:
        """The first decoder layer with a trainable parameter or a memory, or ``None`` when something below the
        decoder layers trains (the embeddings) or nothing does."""
        from hercules.injection.augment import memory_layers

        base = _unwrap(model)
        embeddings = base.get_input_embeddings() if hasattr(base, "get_input_embeddings") else None
        if embeddings is not None and any(p.requires_grad for p in embeddings.parameters()):
            return None
        layers = adapter_for(base).decoder_layers(base)
        trained = [i for i, layer in enumerate(layers) if any(p.requires_grad for p in layer.parameters())]
        return min(trained + list(memory_layers(base)), default=None)

    def _check_frozen(self, model: nn.Module) -> None:
        for i, layer in enumerate(self.layers[: self.start]):
            if any(p.requires_grad for p in layer.parameters()):
                raise ValueError(f"frozen prefix: decoder layer {i} below layer {self.start} has trainable "
                                 "parameters; its output cannot be kept")
            if any(isinstance(m, nn.Dropout) and m.p > 0 for m in layer.modules()):
                raise ValueError(f"frozen prefix: decoder layer {i} has dropout, so its output is not a fixed "
                                 "function of the tokens; turn dropout off or training.segments.frozen_prefix off")
        if getattr(self.config, "attention_dropout", 0.0):  # the text model's config, in a multimodal wrapper
            raise ValueError("frozen prefix: config.attention_dropout is not 0, so the prefix's output is not a "
                             "fixed function of the tokens; set it to 0 or training.segments.frozen_prefix off")

    def hidden(self, model: nn.Module, ids: Tensor, mask: Tensor | None) -> Tensor:
        """``[B, S, D]``: what enters layer ``start`` for the segment ``ids`` ``[B, S]`` (computed for the whole
        batch when a row is missing, then kept row by row)."""
        keys = [_key(ids[b], None if mask is None else mask[b]) for b in range(ids.shape[0])]
        if any(k not in self.cache for k in keys):
            self._keep(keys, model, ids, mask)
        return torch.stack([self.cache[k] for k in keys]).to(ids.device)

    def fill(self, model: nn.Module, items: Sequence[Mapping[str, Any]], batch_size: int = 32,
             progress: bool = False) -> int:
        """Keep the prefix of every segment of ``items`` (``input_ids`` and ``segment_lengths``) now, segments of
        one length ``batch_size`` at a time, instead of one micro-batch at a time during the first epoch. Each is
        keyed as an unpadded training batch keys it (a mask of ones); returns how many were computed. ``progress``
        shows a bar over the batches. A model without memory skips the segments with no labels, as
        :func:`~hercules.training.segment_loss.segmented_lm_loss` does."""
        from hercules.injection.augment import memory_layers
        from hercules.injection.segments import segment_windows

        carries = bool(memory_layers(_unwrap(model)))
        segments: dict[bytes, Tensor] = {}  # key -> ids of each segment not yet kept
        for item in items:
            ids, labels = torch.tensor(item["input_ids"]), torch.tensor(item["labels"])
            for window in segment_windows(len(ids), segment_lengths=item["segment_lengths"]):
                if segment_adds_to_loss(labels[None, window], carries):
                    key = _key(ids[window], torch.ones_like(ids[window]))
                    if key not in self.cache:
                        segments[key] = ids[window]
        by_length: dict[int, list[bytes]] = {}
        for key, ids in segments.items():
            by_length.setdefault(len(ids), []).append(key)
        batches = [keys[b:b + batch_size] for keys in by_length.values() for b in range(0, len(keys), batch_size)]
        device = next(model.parameters()).device
        for keys in track(batches, description=f"frozen prefix ({len(segments)} segments)", disable=not progress):
            ids = torch.stack([segments[k] for k in keys]).to(device)
            self._keep(keys, model, ids, torch.ones_like(ids))
        return len(segments)

    def _keep(self, keys: list[bytes], model: nn.Module, ids: Tensor, mask: Tensor | None) -> None:
        for key, row in zip(keys, self._compute(model, ids, mask), strict=True):
            self.cache[key] = row.to("cpu")

    @torch.no_grad()
    def _compute(self, model: nn.Module, ids: Tensor, mask: Tensor | None) -> Tensor:
        seen: list[Tensor] = []
        last = self.layers[self.start - 1]
        hook = last.register_forward_hook(lambda module, args, out: seen.append(out[0] if isinstance(out, tuple)
                                                                                else out))
        try:
            with _only(self.layers, slice(0, self.start)):
                model(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=1)
        finally:
            hook.remove()
        return seen[-1].detach()

    @contextmanager
    def suffix(self, hidden: Tensor) -> Iterator[None]:
        """Within: a forward of the model runs only layers ``start`` and above, the first of them reading
        ``hidden`` instead of what the (skipped) prefix would have given it."""
        first = self.layers[self.start]

        def feed(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            given = args[0] if args else kwargs["hidden_states"]
            if given.shape != hidden.shape:
                raise RuntimeError(f"frozen prefix: layer {self.start} got a hidden state of shape "
                                   f"{tuple(given.shape)}, the kept one is {tuple(hidden.shape)}")
            kept = hidden.to(given.dtype)
            return ((kept, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": kept})

        hook = first.register_forward_pre_hook(feed, with_kwargs=True)
        types = getattr(self.config, "layer_types", None)  # Gemma-3, Qwen: the loop picks a layer's mask by index
        try:
            if types is not None:
                self.config.layer_types = list(types[self.start:]) + list(types[: self.start])
            with _only(self.layers, slice(self.start, None)):
                yield
        finally:
            hook.remove()
            if types is not None:
                self.config.layer_types = types

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.cache.values())


@contextmanager
def _only(layers: nn.ModuleList, keep: slice) -> Iterator[None]:
    """The layer list holds only ``layers[keep]`` within (the model's forward loops over what the list holds)."""
    everything = list(layers)
    kept = everything[keep]
    for _ in range(len(everything)):
        del layers[-1]
    layers.extend(kept)
    try:
        yield
    finally:
        for _ in range(len(kept)):
            del layers[-1]
        layers.extend(everything)


def _owner_config(model: nn.Module, layers_path: str) -> object:
    """The config of the module that holds the layer list (the text model's, in a multimodal wrapper)."""
    from hercules.backbones.adapters import _find

    owner = _find(model, layers_path.rsplit(".", 1)[0]) if "." in layers_path else model
    return owner.config


def _key(ids: Tensor, mask: Tensor | None) -> bytes:
    digest = hashlib.blake2b(ids.cpu().numpy().tobytes(), digest_size=16)
    if mask is not None:
        digest.update(mask.cpu().numpy().tobytes())
    return digest.digest()


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside DDP / Accelerate wrappers (PEFT is seen through by the adapter)."""
    return getattr(model, "module", model)
