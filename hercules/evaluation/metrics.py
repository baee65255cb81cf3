"""Answer scoring: BABILong's label metric (with two defects of the published scorer fixed), exact match, contains.

BABILong's metric: lower-case the model output, keep its first sentence (up to the first ``.``), cut off anything
the model echoes after the answer (a repeated ``<context>``, ``<example>`` or ``Question``), find the task's answer
labels in it, ignore labels that also occur in the question, and count the answer correct iff exactly the target's
labels remain (all of them, and nothing else, for list answers such as ``apple,milk``). Every task qa1–qa20 has
its full label set, so a hedged answer (``park or cinema``) names two labels and is wrong.

Two defects of the published scorer are fixed here:

1. **Substring labels.** The published scorer tests ``label in output`` on raw strings, so the output ``"none"``
   also contains the label ``"one"``; a correct ``none`` answer in qa7 then has two labels and is scored wrong.
   Labels are matched here as whole words (in the output and in the question).
2. **Question split after lower-casing.** The published scorer lower-cases the output and then splits it on
   ``"Question"``, which can no longer occur, so an echoed next question (with its own labels) is never cut off.
   The split here is done on the original output, before lower-casing, and only where some text comes before
   it (an output that starts by restating the question, ``Question: Where is Mary? Answer: kitchen``, keeps it).

docs/babilong.md lists every difference, each with a test.

Examples:
    >>> babilong_score("The most recent location of Mary is the kitchen.", "kitchen", "Where is Mary?", "qa1")
    True
    >>> babilong_score("none", "none", "How many objects is Mary carrying?", "qa7")
    True
    >>> babilong_score("park or cinema", "park", "Where was Fred before the office?", "qa14")
    False
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PLACES = ["bathroom", "bedroom", "garden", "hallway", "kitchen", "office"]
_YES_NO = ["no", "yes"]

TASK_LABELS: dict[str, list[str]] = {
    "qa1": _PLACES,
    "qa2": _PLACES,
    "qa3": _PLACES,
    "qa4": _PLACES,
    "qa5": ["bill", "fred", "jeff", "mary", "apple", "football", "milk"],
    "qa6": _YES_NO,
    "qa7": ["none", "one", "three", "two"],
    "qa8": ["apple", "football", "milk", "nothing"],
    "qa9": _YES_NO,
    "qa10": ["maybe", "no", "yes"],
    "qa11": _PLACES,
    "qa12": _PLACES,
    "qa13": _PLACES,
    "qa14": ["bedroom", "cinema", "kitchen", "office", "park", "school"],
    "qa15": ["cat", "mouse", "sheep", "wolf"],
    "qa16": ["gray", "green", "white", "yellow"],
    "qa17": _YES_NO,
    "qa18": _YES_NO,
    "qa19": [f"{a},{b}" for a, b in ("ee", "en", "es", "ne", "nn", "nw", "se", "ss", "sw", "wn", "ws", "ww")],
    "qa20": ["bedroom", "bored", "garden", "hungry", "kitchen", "thirsty", "tired"],
}
"""Answer labels per task, lower-cased, as in BABILong's scorer (qa19's labels are whole paths such as ``n,w``)."""


def task_labels(task: str, target: str) -> list[str]:
    """The labels searched for in an answer: the task's label set, plus the target's parts when they are not in
    it (the published scorer would score every answer to such a target wrong)."""
    labels = set(TASK_LABELS.get(task, []))
    if target.lower() not in labels:
        labels |= {p.strip().lower() for p in target.split(",") if p.strip()}
    return sorted(labels)


def _find_labels(text: str, labels: Iterable[str]) -> set[str]:
    """Labels that occur in ``text`` as whole words (not inside a longer word: ``one`` is not in ``none``)."""
    return {label for label in labels if re.search(rf"(?<![a-z0-9]){re.escape(label)}(?![a-z0-9])", text)}


def _echo_cut(output: str) -> str:
    """``output`` up to an echoed ``Question`` (case-sensitive, on the original text) that follows some text."""
    for match in re.finditer("Question", output):
        if output[: match.start()].strip():
            return output[: match.start()]
    return output


def answer_text(output: str) -> str:
    """The part of a generation that BABILong's scorer reads: the echo cut above, then lower-cased, up to the first
    ``.``, and cut at an echoed ``<context>`` or ``<example>`` (in any case)."""
    text = _echo_cut(output).lower().split(".")[0]
    return text.split("<context>")[0].split("<example>")[0]


def first_sentence(output: str) -> str:
    """The answer part for :func:`exact_match`: :func:`answer_text`, also ended at a newline, stripped."""
    return answer_text(output).split("\n")[0].strip()


def babilong_score(output: str, target: str, question: str, task: str) -> bool:
    """BABILong's label metric with the two defects fixed (see the module docstring)."""
    labels = task_labels(task, target)
    found = _find_labels(answer_text(output), labels) - _find_labels(question.lower(), labels)
    target = target.lower()
    if "," in target and len(target) > 3:  # a list answer such as apple,milk (qa8)
        parts = target.split(",")
        return all(p in found for p in parts) and len(found) == len(parts)
    return target in found and len(found) == 1


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
