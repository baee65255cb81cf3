"""Training items for a recipe's ``data`` section: token ids and labels per sequence.

Each item is ``{"input_ids": [...], "labels": [...]}`` as :class:`hercules.training.Trainer` reads them.
BABILong items are a prompt (as the evaluator writes it) followed by the answer and EOS, with the loss on the
answer only by default; language-modelling items are fixed-length blocks of packed text.

Example:
    >>> from hercules.backbones.tokenizer import byte_tokenizer
    >>> from hercules.recipes.schema import BabilongTrainData
    >>> train, val = build_items(BabilongTrainData(samples=4, val_samples=1), byte_tokenizer(), seed=0)
    >>> len(train), len(val)
    (3, 1)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hercules.data.loaders import load_babilong, text_files
from hercules.data.prompts import format_for_model, render_prompt
from hercules.recipes.schema import BabilongTrainData, DataSettings, FinewebData, TextData

logger = logging.getLogger(__name__)

Items = list[dict[str, list[int]]]


def babilong_item(sample: Any, tokenizer: Any, settings: BabilongTrainData) -> dict[str, list[int]]:
    """Prompt + answer + EOS; labels are -100 on the prompt when ``loss_on == "answer"``."""
    chat = settings.use_chat_template and bool(getattr(tokenizer, "chat_template", None))
    prompt = format_for_model(render_prompt(sample.task, sample.context, sample.question, settings.few_shot),
                              tokenizer, chat)
    prompt_ids = tokenizer(prompt, add_special_tokens=not chat)["input_ids"]
    answer_ids = tokenizer(sample.target if chat else f" {sample.target}", add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        answer_ids = answer_ids + [tokenizer.eos_token_id]
    labels = ([-100] * len(prompt_ids) if settings.loss_on == "answer" else list(prompt_ids)) + answer_ids
    return {"input_ids": list(prompt_ids) + answer_ids, "labels": labels}


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


def pack_blocks(token_stream: list[int], seq_len: int) -> Items:
    """Cut one long token stream into blocks of ``seq_len`` (the remainder is dropped)."""
    return [{"input_ids": token_stream[i : i + seq_len]}
            for i in range(0, len(token_stream) - seq_len + 1, seq_len)]


def _text(paths: list[Path], seq_len: int, tokenizer: Any, max_blocks: int | None) -> Items:
    stream: list[int] = []
    for file in text_files(list(paths)):
        stream.extend(tokenizer(file.read_text(encoding="utf-8", errors="replace"), add_special_tokens=False)
                      ["input_ids"])
        if tokenizer.eos_token_id is not None:
            stream.append(tokenizer.eos_token_id)
        if max_blocks is not None and len(stream) >= max_blocks * seq_len:
            break
    blocks = pack_blocks(stream, seq_len)
    if not blocks:
        raise ValueError(f"the text files {[str(p) for p in paths]} hold fewer than seq_len={seq_len} tokens")
    return blocks


def _fineweb(settings: FinewebData, tokenizer: Any) -> tuple[Items, Items]:
    total = settings.samples + settings.val_samples
    if settings.fallback_files:
        blocks = _text(settings.fallback_files, settings.seq_len, tokenizer, total)
    else:
        from hercules.data.fineweb import fineweb_blocks

        blocks = [{"input_ids": list(b)} for b in fineweb_blocks(
            tokenizer, n_blocks=total, seq_len=settings.seq_len, name=settings.dataset, subset=settings.subset)]
    return blocks[settings.val_samples : total], blocks[: settings.val_samples]


def build_items(settings: DataSettings, tokenizer: Any, seed: int = 0) -> tuple[Items, Items]:
    """``(train_items, val_items)`` for a recipe's data section."""
    if isinstance(settings, BabilongTrainData):
        return _babilong(settings, tokenizer, seed)
    if isinstance(settings, FinewebData):
        return _fineweb(settings, tokenizer)
    if isinstance(settings, TextData):
        limit = None if settings.samples is None else settings.samples + settings.val_samples
        blocks = _text(settings.paths, settings.seq_len, tokenizer, limit)
        if len(blocks) <= settings.val_samples:
            raise ValueError(f"data.paths give {len(blocks)} blocks; need more than val_samples={settings.val_samples}")
        return blocks[: len(blocks) - settings.val_samples][: settings.samples], blocks[len(blocks) - settings.val_samples :]
    raise TypeError(f"unknown data settings {type(settings).__name__}")
