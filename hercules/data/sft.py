"""BABILong samples as supervised fine-tuning examples: the evaluation prompt, then the answer, loss on the answer.

Each example is the exact prompt the evaluator uses (:func:`hercules.evaluation.evaluator.encode_prompts`)
followed by the target answer and EOS; ``labels`` are ``-100`` on the prompt so only the answer is learned.

Examples:
    >>> from hercules.backbones.tokenizer import byte_tokenizer
    >>> from hercules.data.babilong import BabilongSample
    >>> tok = byte_tokenizer()
    >>> ex = sft_example(BabilongSample("qa1", "0k", 0, "Mary went to the office.", "Where is Mary?", "office"), tok)
    >>> tok.decode([t for t in ex["labels"] if t != -100])
    'office<eos>'
"""

from __future__ import annotations

from typing import Any

import torch

from hercules.data.babilong import BabilongSample
from hercules.data.prompts import encode_prompts

IGNORE_INDEX = -100


def sft_example(
    sample: BabilongSample, tokenizer: Any, use_chat_template: bool = True, few_shot: bool = True
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (prompt masked with -100) of one sample; the answer is the bare target."""
    items = [(sample.task, sample.context, sample.question)]
    prompt_ids = encode_prompts(items, tokenizer, use_chat_template, few_shot)[0]
    answer_ids = tokenizer(sample.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}


def sft_examples(samples: list[BabilongSample], tokenizer: Any, **kwargs: Any) -> list[dict[str, list[int]]]:
    """:func:`sft_example` over a list of samples."""
    return [sft_example(s, tokenizer, **kwargs) for s in samples]


def collate_sft(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad examples into ``input_ids``, ``attention_mask`` and ``labels``, each ``[B, T]``."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
