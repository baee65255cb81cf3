"""Training items for a recipe's ``data`` section: token ids and labels per sequence.

Each item is ``{"input_ids": [...], "labels": [...]}`` as :class:`hercules.training.Trainer` reads them.
BABILong items are the evaluator's exact prompt followed by the answer and EOS (:mod:`hercules.data.sft`), with the
loss on the answer only by default; language-modelling items are fixed-length blocks of packed text
(:mod:`hercules.data.fineweb`).

Examples:
    >>> from hercules.backbones.tokenizer import byte_tokenizer
    >>> from hercules.recipes.schema import BabilongTrainData
    >>> train, val = build_items(BabilongTrainData(samples=3, val_samples=1), byte_tokenizer(), seed=0)
    >>> len(train), len(val)
    (3, 1)
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import replace
from typing import Any

from hercules.data.fineweb import load_text_blocks
from hercules.data.loaders import load_babilong
from hercules.data.sft import IGNORE_INDEX, sft_example
from hercules.recipes.schema import BabilongTrainData, DataSettings, LanguageModelData, RecallTrainData

logger = logging.getLogger(__name__)

Items = list[dict[str, list[int]]]


_WHERE = re.compile(r"^\s*where is (the )?(.+?)\s*\?\s*$", re.IGNORECASE)


def answer_sentence(question: str, target: str) -> str | None:
    """``'Mary is in the garden.'`` for ``'Where is Mary?'`` (``'The apple is ...'`` for ``'Where is the apple?'``);
    None for questions of another form."""
    match = _WHERE.match(question)
    if match is None:
        return None
    subject = f"The {match.group(2)}" if match.group(1) else match.group(2)
    return f"{subject} is in the {target}."


def babilong_item(sample: Any, tokenizer: Any, settings: BabilongTrainData) -> dict[str, list[int]]:
    """Prompt + answer + EOS; labels are -100 on the prompt unless ``loss_on == "all"``. With
    ``segment_length``, a sample longer than it is laid out as the segmented evaluation reads it
    (:func:`segmented_babilong_item`) and every item carries its ``segment_lengths``."""
    if settings.answer == "sentence":
        sentence = answer_sentence(sample.question, sample.target)
        sample = replace(sample, target=sentence) if sentence else sample
    kwargs = dict(use_chat_template=settings.use_chat_template, few_shot=settings.few_shot)
    item = sft_example(sample, tokenizer, **kwargs)
    if settings.segment_length is not None:
        if item["labels"].count(IGNORE_INDEX) > settings.segment_length:  # the prompt's length, as evaluated
            item = segmented_babilong_item(sample, tokenizer, settings.segment_length, **kwargs)
        else:
            item["segment_lengths"] = [len(item["input_ids"])]
    if settings.questions == "every_person":
        item = ask_every_person(item, sample, tokenizer, settings)
    if settings.loss_on == "all":
        item["labels"] = list(item["input_ids"])
    return item


def ask_every_person(item: dict[str, list[int]], sample: Any, tokenizer: Any,
                     settings: BabilongTrainData) -> dict[str, list[int]]:
    """``item`` with, after its answer, the question "Where is X?" and its answer for every other person of
    the sample's facts (in an order fixed by the sample), labels on each answer; the final segment grows by as
    many tokens. For ``data.questions: every_person`` (qa1, plain prompts)."""
    from hercules.data.babi import person_places
    from hercules.data.prompts import QUESTION, format_for_model

    places = person_places(sample.facts)
    match = _WHERE.match(sample.question)
    if not places or match is None:
        raise ValueError(f"data.questions: every_person needs qa1 samples that keep their facts; sample "
                         f"{sample.index} of {sample.task}/{sample.length} has {len(sample.facts)} facts and "
                         f"asks {sample.question!r}: use source procedural or babi, or questions: one")
    others = sorted(p for p in places if p != match.group(2))
    random.Random(sample.sample_id).shuffle(others)
    ids, labels = item["input_ids"][:-1], item["labels"][:-1]  # the answer, without its EOS
    for person in others:
        cue = format_for_model(QUESTION.format(question=f"Where is {person}?"), tokenizer, use_chat_template=False)
        question = tokenizer(cue, add_special_tokens=False)["input_ids"]
        answer = answer_sentence(f"Where is {person}?", places[person]) if settings.answer == "sentence" else \
            places[person]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids, labels = ids + question + answer_ids, labels + [IGNORE_INDEX] * len(question) + answer_ids
    grown = len(ids) + 1 - len(item["input_ids"])
    out = {"input_ids": ids + item["input_ids"][-1:], "labels": labels + item["labels"][-1:]}
    if "segment_lengths" in item:
        out["segment_lengths"] = item["segment_lengths"][:-1] + [item["segment_lengths"][-1] + grown]
    return out


def segmented_babilong_item(sample: Any, tokenizer: Any, segment_length: int, **prompt: Any) -> dict[str, list[int]]:
    """The layout of :func:`~hercules.evaluation.segmented.segmented_answer`: the context's tokens in segments of
    ``segment_length``, then one segment with the prompt (the context replaced by a note), the question and the
    answer; labels on the answer only."""
    from hercules.evaluation.segmented import MEMORY_NOTE

    context = tokenizer(sample.context, add_special_tokens=False)["input_ids"]
    final = sft_example(replace(sample, context=MEMORY_NOTE), tokenizer, **prompt)
    lengths = [min(segment_length, len(context) - s) for s in range(0, len(context), segment_length)]
    return {
        "input_ids": context + final["input_ids"],
        "labels": [IGNORE_INDEX] * len(context) + final["labels"],
        "segment_lengths": lengths + [len(final["input_ids"])],
    }


def _babilong(settings: BabilongTrainData, tokenizer: Any, seed: int) -> tuple[Items, Items]:
    per_cell = settings.samples + settings.val_samples
    cells = load_babilong(settings.source, settings.tasks, settings.lengths, per_cell, tokenizer, seed=seed,
                          split="train")
    train, val = [], []
    for key in sorted(cells):
        samples = cells[key]
        if len(samples) < per_cell:
            logger.warning("BABILong %s/%s has %d training samples, fewer than the %d asked for",
                           *key, len(samples), per_cell)
        items = [babilong_item(s, tokenizer, settings) for s in samples]
        val.extend(items[: settings.val_samples])
        train.extend(items[settings.val_samples :])
    return train, val


def _language_model(settings: LanguageModelData, tokenizer: Any) -> tuple[Items, Items]:
    wanted = settings.num_blocks + settings.val_blocks
    blocks = load_text_blocks(settings.model_copy(update={"num_blocks": wanted}), tokenizer).tolist()
    if len(blocks) <= settings.val_blocks:
        raise ValueError(
            f"data: only {len(blocks)} blocks of {settings.block_size} tokens available, not more than "
            f"val_blocks={settings.val_blocks}; add text or lower data.val_blocks / data.block_size"
        )
    val, train = blocks[: settings.val_blocks], blocks[settings.val_blocks :]
    return [{"input_ids": b} for b in train], [{"input_ids": b} for b in val]


def _recall(settings: RecallTrainData, tokenizer: Any, seed: int) -> tuple[Items, Items]:
    from hercules.data.recall import recall_items

    train, val = [], []
    for gap in settings.gaps:
        make = lambda count, offset, gap=gap: recall_items(  # noqa: E731
            count, settings.pairs, gap, settings.segment_length, len(tokenizer), seed + offset,
            num_keys=settings.num_keys, num_values=settings.num_values,
        )
        train += make(settings.samples, 0)
        val += make(settings.val_samples, 1000)
    if settings.full_attention:
        for item in train + val:
            item["segment_lengths"] = [len(item["input_ids"])]
    return train, val


def build_items(settings: DataSettings, tokenizer: Any, seed: int = 0) -> tuple[Items, Items]:
    """``(train_items, val_items)`` for a recipe's data section."""
    if isinstance(settings, BabilongTrainData):
        return _babilong(settings, tokenizer, seed)
    if isinstance(settings, RecallTrainData):
        return _recall(settings, tokenizer, seed)
    if isinstance(settings, LanguageModelData):
        return _language_model(settings, tokenizer)
    raise TypeError(f"unknown data settings {type(settings).__name__}")
