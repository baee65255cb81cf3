"""Prompts: BABILong's structure, chat template when present, plain cue otherwise; SFT examples mask the prompt."""

import pytest

from hercules.backbones.tokenizer import byte_tokenizer
from hercules.data.babilong import BabilongSample
from hercules.data.prompts import PROMPTS, encode_prompts, format_for_model, render_prompt, task_prompt
from hercules.data.sft import IGNORE_INDEX, collate_sft, sft_examples


@pytest.mark.parametrize("task", [f"qa{i}" for i in range(1, 21)])
def test_structure_in_order(task):
    parts = task_prompt(task)
    text = render_prompt(task, context="CTX-SENTINEL.", question="QUESTION-SENTINEL?")
    positions = [
        text.index(parts.instruction),
        text.index("<example>"),
        text.index(parts.post_prompt),
        text.index("<context>\nCTX-SENTINEL.\n</context>"),
        text.index("Question: QUESTION-SENTINEL?"),
    ]
    assert positions == sorted(positions)
    assert text.endswith("Question: QUESTION-SENTINEL?")


def test_every_babilong_task_has_its_own_prompt_and_zero_shot_drops_examples():
    assert set(PROMPTS) == {f"qa{i}" for i in range(1, 11)}
    assert "<example>" not in render_prompt("qa1", "c", "q?", few_shot=False)


def test_chat_template_or_plain_cue():
    tok = byte_tokenizer()
    chat = format_for_model("PROMPT", tok, use_chat_template=True)
    assert chat.startswith("<|user|>\nPROMPT") and chat.endswith("<|assistant|>\n")
    assert format_for_model("PROMPT", tok, use_chat_template=False) == "PROMPT\n\nAnswer:"
    tok.chat_template = None
    assert format_for_model("PROMPT", tok, use_chat_template=True) == "PROMPT\n\nAnswer:"


def test_plain_prompt_gets_special_tokens_chat_prompt_does_not_double_them():
    tok = byte_tokenizer()
    (chat_ids,) = encode_prompts([("qa1", "c.", "q?")], tok, use_chat_template=True)
    assert chat_ids.count(tok.bos_token_id) == 0  # this template writes no BOS, and none is added
    assert tok.decode(chat_ids).endswith("<|assistant|>\n")


def test_sft_examples_learn_only_the_answer():
    tok = byte_tokenizer()
    samples = [
        BabilongSample("qa1", "0k", i, "Mary went to the office.", "Where is Mary?", t)
        for i, t in enumerate(["office", "kitchen"])
    ]
    examples = sft_examples(samples, tok)
    prompt_ids = encode_prompts([("qa1", s.context, s.question) for s in samples], tok)
    for ex, ids, s in zip(examples, prompt_ids, samples, strict=True):
        assert ex["input_ids"][: len(ids)] == ids
        assert tok.decode([t for t in ex["labels"] if t != IGNORE_INDEX]) == s.target + tok.eos_token
    batch = collate_sft(examples, pad_id=tok.pad_token_id)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert int(batch["attention_mask"][1].sum()) == len(examples[1]["input_ids"])
    assert (batch["labels"][1, len(examples[1]["input_ids"]) :] == IGNORE_INDEX).all()
