"""Answering with long contexts read in segments: the memory carries the context, attention sees the question.

For an input longer than ``segment_length`` the sample's context is read segment by segment into the memory of
an augmented model (:func:`hercules.injection.segments.generate_segmented`); then the task prompt (instruction,
examples, answer format and question, with a note in place of the context) is read and answered with that memory.
Attention never sees the context; only the memory does. A model without memory therefore answers without the
context, which is the intended baseline for "no memory" at lengths beyond its attention.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from hercules.data.babilong import BabilongSample
from hercules.data.prompts import encode_prompts

MEMORY_NOTE = "(The context was given to you before this message; recall it from memory.)"


def segmented_answer(
    model: Any, tokenizer: Any, sample: BabilongSample, settings: Any, gen: dict[str, Any]
) -> str:
    """Read ``sample.context`` in segments of ``settings.segment_length``, then answer the prompt greedily."""
    try:
        segments = importlib.import_module("hercules.injection.segments")
    except ImportError as error:
        raise RuntimeError(
            "segment_length is set but hercules.injection.segments is not available; unset segment_length"
        ) from error
    context = tokenizer(sample.context, add_special_tokens=False)["input_ids"]
    prompt = encode_prompts(
        [(sample.task, MEMORY_NOTE, sample.question)],
        tokenizer,
        settings.use_chat_template,
        settings.few_shot,
    )[0]
    context_ids = torch.tensor([context], device=model.device)
    prompt_ids = torch.tensor([prompt], device=model.device)
    out = segments.generate_segmented(
        model, context_ids, prompt_ids, segment_length=settings.segment_length, **gen
    )
    return tokenizer.decode(out[0, len(prompt) :], skip_special_tokens=True).strip()
