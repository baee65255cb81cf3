"""Parser for the original bAbI question-answering files (Weston et al., 2015), version 1.2.

Each line is ``ID text`` (a fact) or ``ID question<TAB>answer<TAB>supporting IDs``; an ID of 1 starts a new story.
Every question yields one :class:`BabiSample`: the facts of its story up to the question (earlier questions are
dropped, as BABILong does), the question, the answer and the supporting facts as indices into those facts.

Examples:
    >>> lines = ["1 Mary went to the kitchen.", "2 John went to the garden.", "3 Where is Mary?\\tkitchen\\t1"]
    >>> sample = parse_babi(lines, task="qa1")[0]
    >>> sample.facts, sample.answer, sample.supporting
    (('Mary went to the kitchen.', 'John went to the garden.'), 'kitchen', (0,))
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TASK_NAMES = {
    "qa1": "single-supporting-fact",
    "qa2": "two-supporting-facts",
    "qa3": "three-supporting-facts",
    "qa4": "two-arg-relations",
    "qa5": "three-arg-relations",
    "qa6": "yes-no-questions",
    "qa7": "counting",
    "qa8": "lists-sets",
    "qa9": "simple-negation",
    "qa10": "indefinite-knowledge",
    "qa11": "basic-coreference",
    "qa12": "conjunction",
    "qa13": "compound-coreference",
    "qa14": "time-reasoning",
    "qa15": "basic-deduction",
    "qa16": "basic-induction",
    "qa17": "positional-reasoning",
    "qa18": "size-reasoning",
    "qa19": "path-finding",
    "qa20": "agents-motivations",
}

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_MOVE = re.compile(r"^(\w+) (?:moved|went|journeyed|travelled|went back) to the (\w+)\.?$")


@dataclass(frozen=True)
class BabiSample:
    """One bAbI question with the facts it is asked about.

    Attributes:
        task: task name such as ``"qa1"``.
        facts: the story's fact sentences before the question, in order.
        question: the question sentence, e.g. ``"Where is Mary?"``.
        answer: the answer; list answers are comma-separated (``"apple,milk"``).
        supporting: indices into ``facts`` of the supporting facts.
    """

    task: str
    facts: tuple[str, ...]
    question: str
    answer: str
    supporting: tuple[int, ...] = ()


def parse_babi(lines: Iterable[str], task: str, source: str = "bAbI lines") -> list[BabiSample]:
    """Parse bAbI lines into samples, one per question (see the module docstring for the format).

    A supporting-fact ID that names no fact of the story is dropped with a warning naming ``source`` and the line.
    """
    samples: list[BabiSample] = []
    facts: list[str] = []
    fact_index: dict[int, int] = {}  # line ID -> index into facts, for supporting-fact lookup
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"bAbI line {number} does not start with a numeric ID: {line!r}")
        line_id, text = int(match.group(1)), match.group(2)
        if line_id == 1:
            facts, fact_index = [], {}
        if "\t" not in text:
            fact_index[line_id] = len(facts)
            facts.append(text.strip())
            continue
        parts = text.split("\t")
        if len(parts) < 2:
            raise ValueError(f"bAbI question on line {number} has no answer field: {line!r}")
        support_ids = [int(s) for s in parts[2].split()] if len(parts) > 2 else []
        unknown = [s for s in support_ids if s not in fact_index]
        if unknown:
            log.warning("%s, line %d: supporting fact ID(s) %s name no fact of the story; ignoring them",
                        source, number, unknown)
        supporting = tuple(fact_index[s] for s in support_ids if s in fact_index)
        samples.append(BabiSample(task, tuple(facts), parts[0].strip(), parts[1].strip(), supporting))
    return samples


def person_places(facts: Iterable[str]) -> dict[str, str]:
    """Where each person of qa1's facts ("Mary went back to the garden.") is after the last of them, in the
    order the people first appear.

    Examples:
        >>> person_places(["Mary went to the kitchen.", "John moved to the office.", "Mary journeyed to the garden."])
        {'Mary': 'garden', 'John': 'office'}
    """
    where: dict[str, str] = {}
    for fact in facts:
        match = _MOVE.match(fact.strip())
        if match:
            where[match.group(1)] = match.group(2)
    return where


def find_babi_file(babi_dir: str | Path, task: str, split: str = "test") -> Path:
    """Return the file of ``task`` (``"qa1"``) and ``split`` under ``babi_dir`` (its ``en/`` folder is searched too).

    Raises:
        FileNotFoundError: naming the folder, the pattern looked for and the tasks that are present.
    """
    root = Path(babi_dir)
    for folder in (root, root / "en"):
        hits = sorted(folder.glob(f"{task}_*_{split}.txt"))
        if hits:
            return hits[0]
    present = sorted({p.name.split("_")[0] for p in root.rglob("qa*_*.txt")})
    raise FileNotFoundError(
        f"no bAbI file for task {task!r}, split {split!r} under {root} (looked for {task}_*_{split}.txt); "
        f"tasks present: {present or 'none'}"
    )


def load_babi_task(babi_dir: str | Path, task: str, split: str = "test") -> list[BabiSample]:
    """Load all samples of one bAbI task and split from a folder of the original files."""
    path = find_babi_file(babi_dir, task, split)
    with path.open(encoding="utf-8") as handle:
        return parse_babi(handle, task=task, source=str(path))
