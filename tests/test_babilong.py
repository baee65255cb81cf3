"""BABILong generator: context lengths in tokens, facts in order at sentence boundaries, seeding."""

from pathlib import Path

import numpy as np
import pytest

from hercules.backbones.tokenizer import byte_tokenizer
from hercules.data.babi import BabiSample
from hercules.data.babilong import (
    LENGTHS,
    BabilongGenerator,
    SentenceSource,
    insert_facts,
    length_tokens,
    split_sentences,
)
from hercules.data.procedural import background_sentences, generate_task

BOOKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "books"


@pytest.fixture(scope="module")
def tok():
    return byte_tokenizer()


@pytest.fixture(scope="module")
def generator(tok):
    return BabilongGenerator(SentenceSource(background_sentences(3000), "procedural"), tok, seed=0)


def _count(tok, text):
    return len(tok(text, add_special_tokens=False)["input_ids"])


def _is_subsequence(items, sequence):
    it = iter(sequence)
    return all(any(x == y for y in it) for x in items)


def test_length_names():
    assert [length_tokens(n) for n in LENGTHS] == [0] + [k * 1024 for k in (1, 2, 4, 8, 16, 32, 64, 128)]
    with pytest.raises(ValueError, match="'2kb'"):
        length_tokens("2kb")


@pytest.mark.parametrize("length", ["1k", "2k", "4k"])
def test_context_fills_length_with_facts_in_order(generator, tok, length):
    budget = length_tokens(length)
    longest = max(len(s) for s in generator.background.sentences) + 2  # one sentence of slack
    for i, story in enumerate(generate_task("qa2", 3, seed=1)):
        sample = generator.make(story, length, index=i)
        n = _count(tok, sample.context)
        assert budget - 2 * longest <= n <= budget
        sentences = split_sentences(sample.context)
        assert _is_subsequence(list(story.facts), sentences)
        assert sample.question == story.question and sample.target == story.answer


def test_zero_length_is_facts_only(generator):
    story = generate_task("qa1", 1)[0]
    assert generator.make(story, "0k", 0).context == " ".join(story.facts)


def test_seeded_and_independent_of_other_samples(tok):
    story = generate_task("qa1", 1)[0]
    bg = SentenceSource(background_sentences(3000), "procedural")
    a = BabilongGenerator(bg, tok, seed=0).make(story, "1k", index=5)
    b = BabilongGenerator(bg, tok, seed=0).make(story, "1k", index=5)
    c = BabilongGenerator(bg, tok, seed=1).make(story, "1k", index=5)
    assert a.context == b.context
    assert a.context != c.context


def test_insert_facts_keeps_both_orders_and_all_sentences():
    rng = np.random.default_rng(0)
    background = [f"B{i}." for i in range(20)]
    facts = [f"F{i}." for i in range(6)]
    merged = insert_facts(background, facts, rng)
    assert sorted(merged) == sorted(background + facts)
    assert [s for s in merged if s.startswith("F")] == facts
    assert [s for s in merged if s.startswith("B")] == background


def test_insert_facts_positions_vary_with_seed():
    background, facts = [f"B{i}." for i in range(50)], ["F0.", "F1."]
    placements = {
        tuple(insert_facts(background, facts, np.random.default_rng(s)).index(f) for f in facts)
        for s in range(10)
    }
    assert len(placements) > 5


def test_story_longer_than_budget_is_kept_whole(generator):
    story = BabiSample(
        "qa1", tuple(f"Mary went to the kitchen number {i}." for i in range(60)), "Where?", "kitchen"
    )
    sample = generator.make(story, "1k", 0)
    assert sample.context == " ".join(story.facts)
    assert sample.meta["over_budget"] is True


def test_split_sentences():
    text = 'He said "Stop!" Then he left. Mr. Smith stayed? Yes.\nThe end'
    assert split_sentences(text) == [
        'He said "Stop!"',
        "Then he left.",
        "Mr. Smith stayed?",
        "Yes.",
        "The end",
    ]


@pytest.mark.skipif(not BOOKS.is_dir(), reason="../shared/data/books is absent")
def test_book_background(tok):
    source = SentenceSource.from_files([BOOKS / "pg1661.txt"])
    assert len(source.sentences) > 3000
    sample = BabilongGenerator(source, tok, seed=0).make(generate_task("qa1", 1)[0], "2k", 0)
    assert 1500 < _count(tok, sample.context) <= 2048
