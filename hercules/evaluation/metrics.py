"""Answer scoring: BABILong's label metric (with two defects of the published scorer fixed), exact match, contains.

BABILong's metric: lower-case the model output, cut off anything the model echoes after the answer (a repeated
``<context>`` or ``Question``), keep its first sentence, find the task's answer labels in it, ignore labels that
also occur in the question, and count the answer correct iff exactly the target's labels remain (all of them, and
nothing else, for list answers such as ``apple,milk``).

Two defects of the published scorer are fixed here:

1. **Substring labels.** The published scorer tests ``label in output`` on raw strings, so the output ``"none"``
   also contains the label ``"one"``; a correct ``none`` answer in qa7 then has two labels and is scored wrong.
   Labels are matched here as whole words.
2. **Question split after lower-casing.** The published scorer lower-cases the output and then splits it on
   ``"Question"``, which can no longer occur, so an echoed next question (with its own labels) is never cut off.
   The split here is done on the original output, before lower-casing.

Examples:
    >>> babilong_score("The most recent location of Mary is the kitchen.", "kitchen", "Where is Mary?", "qa1")
    True
    >>> babilong_score("none", "none", "How many objects is Mary carrying?", "qa7")
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PLACES = ["bathroom", "bedroom", "garden", "hallway", "kitchen", "office"]

TASK_LABELS: dict[str, list[str]] = {
    "qa1": _PLACES,
    "qa2": _PLACES,
    "qa3": _PLACES,
    "qa4": _PLACES,
    "qa5": ["bill", "fred", "jeff", "mary", "apple", "football", "milk"],
    "qa6": ["no", "yes"],
    "qa7": ["none", "one", "three", "two"],
    "qa8": ["apple", "football", "milk", "nothing"],
    "qa9": ["no", "yes"],
    "qa10": ["maybe", "no", "yes"],
}
"""Answer labels per task (qa1–qa10, as in BABILong). Other tasks use the target's own words as labels."""


def task_labels(task: str, target: str) -> list[str]:
    """The labels searched for in an answer: the task's table entry plus the target's parts (lower-cased)."""
    parts = [p.strip().lower() for p in target.split(",") if p.strip()]
    return sorted(set(TASK_LABELS.get(task, [])) | set(parts))


def _find_labels(text: str, labels: Iterable[str]) -> set[str]:
    words = set(re.findall(r"[a-z0-9]+", text))
    return {label for label in labels if label in words}


def first_sentence(output: str) -> str:
    """The answer part of a generation: lower-cased, echoed context/question cut off, up to the first ``.``/newline."""
    text = re.split(r"<context>|Question", output)[0].lower().strip()
    for stop in (".", "\n"):
        cut = text.find(stop)
        if cut != -1:
            text = text[:cut]
    return text


def babilong_score(output: str, target: str, question: str, task: str) -> bool:
    """BABILong's label metric with the two defects fixed (see the module docstring)."""
    labels = task_labels(task, target)
    answer = first_sentence(output)
    found = _find_labels(answer, labels) - _find_labels(question.lower(), labels)
    wanted = {p.strip().lower() for p in target.split(",") if p.strip()}
    return found == wanted


def normalize(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse spaces (SQuAD-style normalisation); commas, which
    separate the items of list answers, are kept with no space around them (``"apple, milk"`` → ``"apple,milk"``)."""
    text = re.sub(r"[^a-z0-9, ]", " ", text.lower())
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return re.sub(r" ?, ?", ",", " ".join(text.split())).strip(",")


def exact_match(output: str, target: str) -> bool:
    """The normalised first sentence of the output equals the normalised target."""
    return normalize(first_sentence(output)) == normalize(target)


def contains(output: str, target: str) -> bool:
    """Every comma-separated part of the target occurs as whole words in the normalised output (a comma in the
    output separates words: ``"The kitchen, then ..."`` contains ``kitchen``)."""
    words = f" {normalize(output).replace(',', ' ')} "
    return all(f" {normalize(p)} " in words for p in target.split(",") if normalize(p))


METRICS = {"babilong": babilong_score, "exact_match": exact_match, "contains": contains}
