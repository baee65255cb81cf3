"""BABILong generator: hide the facts of a bAbI sample inside long background text (Kuratov et al., 2024).

The published method, reimplemented: background text is split into sentences; for each sample a consecutive
excerpt of background sentences is taken from a random place, as long as fits ``length - facts`` tokens of a given
tokenizer; the sample's facts are then inserted, in their original order, at randomly chosen sentence boundaries
of the excerpt. The question is kept separate. Everything is seeded per (seed, task, length, sample index), so a
sample does not depend on which other samples or lengths are generated.

Lengths are named as in BABILong: ``"0k"`` (facts only, no background), ``"1k"`` … ``"128k"``; ``"Nk"`` means a
context of at most ``N * 1024`` tokens (facts + background, without prompt or question).

Examples:
    >>> from hercules.data.procedural import background_sentences, generate_task
    >>> from hercules.backbones.tokenizer import byte_tokenizer  # doctest: +SKIP
    >>> bg = SentenceSource(background_sentences(2000))
    >>> gen = BabilongGenerator(bg, tokenizer=byte_tokenizer(), seed=0)  # doctest: +SKIP
    >>> sample = gen.make(generate_task("qa1", 1)[0], "1k", index=0)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hercules.data.babi import BabiSample

if TYPE_CHECKING:  # numpy is imported where it is used: the recipe schema imports this module
    import numpy as np

log = logging.getLogger(__name__)

LENGTHS = ("0k", "1k", "2k", "4k", "8k", "16k", "32k", "64k", "128k")
# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before a capital or digit,
# except after common abbreviations.
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)\s+(?=[\"'(\[]*[A-Z0-9])"
)


def length_tokens(length: str | int) -> int:
    """Token budget of a length name: ``"0k"`` → 0, ``"2k"`` → 2048; an int is returned unchanged."""
    if isinstance(length, int):
        return length
    match = re.fullmatch(r"(\d+)k", str(length).strip().lower())
    if match is None:
        raise ValueError(f"length {length!r} is not of the form '<N>k' (for example {', '.join(LENGTHS)})")
    return int(match.group(1)) * 1024


@dataclass
class BabilongSample:
    """One BABILong sample: a long context hiding the facts, a question and its target answer.

    Attributes:
        task: ``"qa1"`` … ; length: length name (``"2k"``); index: the sample's number within (task, length).
        context: facts + background text; question: the question; target: the answer (comma-separated lists).
        facts: the inserted fact sentences, in order (empty when loaded from a dataset that does not keep them).
    """

    task: str
    length: str
    index: int
    context: str
    question: str
    target: str
    facts: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_id(self) -> str:
        """A hash of the sample's input, question and target: what an evaluation resumes by (16 hex digits)."""
        text = "\x1f".join((self.context, self.question, self.target))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def to_record(self) -> dict[str, Any]:
        """The sample in the hub schema (``input``, ``question``, ``target``) plus our bookkeeping fields."""
        record = asdict(self)
        record["input"] = record.pop("context")
        record["facts"] = list(self.facts)
        return record


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences at ``.``, ``!`` or ``?`` followed by space and a capital/digit; lines joined."""
    flat = " ".join(text.split())
    return [s.strip() for s in _SENTENCE_END.split(flat) if s.strip()]


class SentenceSource:
    """Background sentences with cached token counts, sampled as consecutive excerpts (wrapping around).

    Args:
        sentences: the background sentences, in reading order.
        name: a description recorded in results (file names or ``"procedural"``).
    """

    def __init__(self, sentences: list[str], name: str = "text") -> None:
        if not sentences:
            raise ValueError(f"background {name!r} has no sentences; give non-empty text files")
        self.sentences = sentences
        self.name = name
        self._lengths: dict[int, np.ndarray] = {}

    @classmethod
    def from_files(cls, paths: list[str | Path]) -> SentenceSource:
        """Read UTF-8 text files (each split on blank-line paragraphs, then into sentences)."""
        sentences: list[str] = []
        for path in sorted(Path(p) for p in paths):
            text = path.read_text(encoding="utf-8", errors="replace")
            for paragraph in re.split(r"\n\s*\n", text):
                sentences.extend(split_sentences(paragraph))
        return cls(sentences, name=",".join(Path(p).name for p in sorted(map(str, paths))))

    def token_lengths(self, tokenizer: Any) -> np.ndarray:
        """Token count of every sentence (with a leading space, as it appears in a joined text), cached."""
        key = id(tokenizer)
        if key not in self._lengths:
            ids = tokenizer([" " + s for s in self.sentences], add_special_tokens=False)["input_ids"]
            import numpy as np

            self._lengths[key] = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        return self._lengths[key]

    def excerpt(self, budget: int, tokenizer: Any, rng: np.random.Generator) -> list[str]:
        """Consecutive sentences from a random start whose token counts sum to at most ``budget``."""
        lengths = self.token_lengths(tokenizer)
        start, total, picked = int(rng.integers(len(self.sentences))), 0, []
        for step in range(len(self.sentences)):
            i = (start + step) % len(self.sentences)
            if total + lengths[i] > budget:
                break
            picked.append(self.sentences[i])
            total += int(lengths[i])
        return picked


def insert_facts(background: list[str], facts: list[str], rng: np.random.Generator) -> list[str]:
    """Insert ``facts`` in order at random sentence boundaries of ``background`` (several may share one)."""
    import numpy as np

    positions = np.sort(rng.integers(0, len(background) + 1, size=len(facts)))
    out: list[str] = []
    fact_iter = iter(zip(positions.tolist(), facts, strict=True))
    pending = next(fact_iter, None)
    for boundary in range(len(background) + 1):
        while pending is not None and pending[0] == boundary:
            out.append(pending[1])
            pending = next(fact_iter, None)
        if boundary < len(background):
            out.append(background[boundary])
    return out


class BabilongGenerator:
    """Turn bAbI samples into BABILong samples of given lengths, measured in tokens of ``tokenizer``.

    Args:
        background: the distractor text.
        tokenizer: any HF tokenizer; lengths are counted in its tokens (without special tokens).
        seed: base seed; each sample is seeded by (seed, task, length, index).
    """

    def __init__(self, background: SentenceSource, tokenizer: Any, seed: int = 0) -> None:
        self.background = background
        self.tokenizer = tokenizer
        self.seed = seed

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def make(self, sample: BabiSample, length: str, index: int) -> BabilongSample:
        """Build the BABILong sample of ``sample`` at ``length`` whose context has at most that many tokens."""
        budget = length_tokens(length)
        facts = list(sample.facts)
        meta = {"supporting": list(sample.supporting), "background": self.background.name}
        if budget == 0:
            context = " ".join(facts)
            return BabilongSample(
                sample.task, length, index, context, sample.question, sample.answer, tuple(facts), meta
            )
        key = [self.seed, zlib.crc32(sample.task.encode()), budget, index]
        import numpy as np

        rng = np.random.default_rng(key)
        fact_tokens = sum(self._count(" " + f) for f in facts)
        if fact_tokens >= budget:
            # As in BABILong, a story longer than the budget is kept whole, with no background.
            log.debug("%s sample %d: %d fact tokens exceed %s", sample.task, index, fact_tokens, length)
            meta["over_budget"] = True
        background = self.background.excerpt(max(budget - fact_tokens, 0), self.tokenizer, rng)
        sentences = insert_facts(background, facts, rng)
        context = " ".join(sentences)
        # Joined text can tokenize slightly longer than the sum of its sentences; trim background from the end.
        while self._count(context) > budget and len(sentences) > len(facts):
            drop = max(i for i, s in enumerate(sentences) if s not in facts)
            sentences.pop(drop)
            context = " ".join(sentences)
        return BabilongSample(
            sample.task, length, index, context, sample.question, sample.answer, tuple(facts), meta
        )
