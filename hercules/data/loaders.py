"""BABILong samples from any source: generated from bAbI files + books, procedural, the hub, or local JSON(L).

:class:`BabilongData` says where samples come from; :func:`load_babilong` returns them per (task, length). The same
function gives evaluation samples (``split="test"``) and training samples (``split="train"``).

Sources:
    ``babi``: the original bAbI files (``babi_dir``) hidden in book text (``background``: text files or folders;
    PG-19 from the hub when not given and online). ``procedural``: the built-in offline stand-in
    (:mod:`hercules.data.procedural`). ``hub``: ``RMT-team/babilong`` (test) or ``RMT-team/babilong-train-5k-samples``
    (train); configs are lengths, splits are tasks. ``local``: JSON or JSONL files in the hub schema (``input``,
    ``question``, ``target``, optionally ``task`` and ``length``).

Examples:
    >>> data = BabilongData(source="procedural")
    >>> from hercules.backbones.tokenizer import byte_tokenizer
    >>> samples = load_babilong(data, ["qa1"], ["0k"], n=3, tokenizer=byte_tokenizer())
    >>> len(samples["qa1", "0k"])
    3
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hercules.data.babi import load_babi_task
from hercules.data.babilong import (
    BabilongGenerator,
    BabilongSample,
    SentenceSource,
    length_tokens,
    split_sentences,
)
from hercules.data.hub import load_hub_dataset
from hercules.data.procedural import background_sentences, generate_task

log = logging.getLogger(__name__)

HUB_TEST = "RMT-team/babilong"
HUB_TRAIN = "RMT-team/babilong-train-5k-samples"
_OFFLINE_HINT = (
    "use data source 'babi' with babi_dir=<folder of bAbI qa*_test.txt files> and background=<text files>, "
    "or source 'local' with local_path=<JSON/JSONL in the BABILong schema>, or source 'procedural' (built in)"
)


class BabilongData(BaseModel):
    """Where BABILong samples come from (see :mod:`hercules.data.loaders`).

    Examples:
        >>> BabilongData(source="babi", babi_dir="../shared/data/babi", background=["../shared/data/books"]).source
        'babi'
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    source: Literal["babi", "procedural", "hub", "local"] = Field(
        "procedural",
        description="babi: bAbI files hidden in book text; procedural: built-in offline stand-in (not comparable "
        "with published numbers); hub: RMT-team/babilong datasets; local: JSON/JSONL files in the hub schema",
    )
    babi_dir: Path | None = Field(None, description="folder with the original bAbI files (source babi)")
    background: list[Path] | None = Field(
        None,
        description="text files or folders of .txt files used as background (source babi); PG-19 if unset",
    )
    local_path: Path | None = Field(
        None, description="JSON/JSONL file, or folder of <length>/<task>.jsonl files (source local)"
    )
    background_hub: str = Field(
        "deepmind/pg19", description="hub dataset with a 'text' field used as background when none is given"
    )
    hub_name: str | None = Field(
        None, description=f"hub dataset id; default {HUB_TEST} (test), {HUB_TRAIN} (train)"
    )

    @model_validator(mode="after")
    def _source_complete(self) -> BabilongData:
        if self.source == "local" and self.local_path is None:
            raise ValueError("source 'local' needs local_path (a JSON/JSONL file or a folder of them)")
        if self.source == "babi" and self.babi_dir is None:
            raise ValueError("source 'babi' needs babi_dir (a folder of bAbI qa*_<split>.txt files)")
        return self


def text_files(paths: list[Path]) -> list[Path]:
    """Expand folders into their ``*.txt`` files; raise naming any path that does not exist."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.txt")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(
                f"background path {path} does not exist; give text files or folders of .txt"
            )
    if not files:
        raise FileNotFoundError(f"no .txt files in background paths {[str(p) for p in paths]}")
    return files


def pg19_background(n_books: int = 8, split: str = "test", name: str = "deepmind/pg19") -> SentenceSource:
    """Sentences of the first ``n_books`` PG-19 books, streamed from the hub (fails fast offline)."""
    stream = load_hub_dataset(name, _OFFLINE_HINT, split=split, streaming=True)
    texts = [row["text"] for _, row in zip(range(n_books), stream, strict=False)]
    sentences = [s for text in texts for s in split_sentences(text)]
    return SentenceSource(sentences, name=f"{name}:{split}[:{n_books}]")


def _pick(count: int, n: int | None, seed: int, task: str) -> list[int]:
    """Seeded choice of ``n`` indices out of ``count``, prefix-stable: the first ``k`` picks never depend on ``n``.

    The same seeded order for every ``n``, up to all of them when ``n`` is None or at least ``count``: sample
    ``i`` is the same story whatever the count asked for.
    """
    import numpy as np

    rng = np.random.default_rng([seed, sum(map(ord, task))])
    return rng.permutation(count)[: count if n is None else n].tolist()


def _procedural_count(length: str) -> int:
    """Enough procedural sentences for one length (about 14 tokens each in a BPE tokenizer); it depends on that
    length only, so a sample does not change when other lengths are requested with it."""
    return max(100, length_tokens(length) // 6)


def _generated(
    data: BabilongData,
    tasks: list[str],
    lengths: list[str],
    n: int | None,
    tokenizer: Any,
    seed: int,
    split: str,
) -> dict[tuple[str, str], list[BabilongSample]]:
    if data.source == "procedural":
        backgrounds = {
            length: SentenceSource(background_sentences(_procedural_count(length), seed=seed), "procedural")
            for length in lengths
        }
        stories = {
            t: generate_task(t, n or 1000, seed=seed + (7919 if split == "train" else 0)) for t in tasks
        }
    else:
        if data.babi_dir is None:
            raise ValueError(
                "data.babi_dir is required for source 'babi' (a folder of bAbI qa*_<split>.txt files)"
            )
        background = (
            SentenceSource.from_files(text_files(data.background))
            if data.background
            else pg19_background(split="train" if split == "train" else "test", name=data.background_hub)
        )
        backgrounds = dict.fromkeys(lengths, background)
        stories = {}
        for task in tasks:
            all_samples = load_babi_task(data.babi_dir, task, split)
            stories[task] = [all_samples[i] for i in _pick(len(all_samples), n, seed, task)]
    generators = {length: BabilongGenerator(backgrounds[length], tokenizer, seed=seed) for length in lengths}
    return {
        (t, length): [generators[length].make(s, length, i) for i, s in enumerate(stories[t])]
        for t in tasks
        for length in lengths
    }


def _hub(
    data: BabilongData, tasks: list[str], lengths: list[str], n: int | None, split: str
) -> dict[tuple[str, str], list[BabilongSample]]:
    name = data.hub_name or (HUB_TRAIN if split == "train" else HUB_TEST)
    out = {}
    for length in lengths:
        for task in tasks:
            rows = load_hub_dataset(name, _OFFLINE_HINT, name=length, split=task)
            rows = rows.select(range(min(n, len(rows)))) if n is not None else rows
            out[task, length] = [from_record(r, task, length, i) for i, r in enumerate(rows)]
    return out


def from_record(
    record: dict[str, Any], task: str, length: str, index: int, where: str | None = None
) -> BabilongSample:
    """A sample from a record in the hub schema (``input``, ``question``, ``target``).

    ``where`` (a file and line) is named in the error when a field is missing.
    """
    missing = [k for k in ("input", "question", "target") if k not in record]
    if missing:
        raise ValueError(
            f"{where or f'BABILong record {index}'} ({task}/{length}) lacks field(s) {', '.join(missing)}; "
            f"every record needs input, question and target"
        )
    facts = tuple(record.get("facts") or ())
    return BabilongSample(
        task, length, index, record["input"], record["question"], str(record["target"]), facts
    )


def read_local(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON (a list, or a dict of lists) or JSONL file."""
    return [record for _, record in read_local_located(path)]


def read_local_located(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(where, record)`` pairs of a JSON or JSONL file, ``where`` naming the file and line (or record number).

    Raises:
        ValueError: the file holds no record, or a line is not JSON (naming the file and the line).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        located = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    located.append((f"{path}, line {number}", json.loads(line)))
                except json.JSONDecodeError as err:
                    raise ValueError(
                        f"{path}, line {number}, column {err.colno}: not valid JSON ({err.msg})"
                    ) from err
    else:
        try:
            data = json.loads(text) if text.strip() else []
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})") from err
        if isinstance(data, dict):
            data = [dict(r, task=r.get("task", key)) for key, rows in data.items() for r in rows]
        located = [(f"{path}, record {i}", r) for i, r in enumerate(data)]
    if not located:
        raise ValueError(f"{path} holds no BABILong records; give a JSON/JSONL file in the hub schema")
    return located


def _local(
    data: BabilongData, tasks: list[str], lengths: list[str], n: int | None
) -> dict[tuple[str, str], list[BabilongSample]]:
    if data.local_path is None:
        raise ValueError("data.local_path is required for source 'local' (a JSON/JSONL file or a folder)")
    root = Path(data.local_path)
    out = {}
    for length in lengths:
        for task in tasks:
            if root.is_dir():
                hits = [
                    p for p in (root / length / f"{task}.jsonl", root / length / f"{task}.json") if p.exists()
                ]
                if not hits:
                    raise FileNotFoundError(f"no {length}/{task}.jsonl or .json under {root}")
                records = read_local_located(hits[0])
            else:
                records = [
                    (where, r)
                    for where, r in read_local_located(root)
                    if r.get("task", task) == task and r.get("length", length) == length
                ]
                if not records:
                    raise ValueError(f"{root} has no records of task {task} at length {length}")
            records = records[:n] if n is not None else records
            out[task, length] = [from_record(r, task, length, i, where) for i, (where, r) in enumerate(records)]
    return out


def write_local(samples: list[BabilongSample], path: str | Path) -> Path:
    """Write samples as JSONL in the hub schema (readable again with source ``local``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(json.dumps(sample.to_record()) + "\n")
    return path


def load_babilong(
    data: BabilongData,
    tasks: list[str],
    lengths: list[str],
    n: int | None,
    tokenizer: Any = None,
    seed: int = 0,
    split: Literal["test", "train"] = "test",
) -> dict[tuple[str, str], list[BabilongSample]]:
    """BABILong samples per ``(task, length)``: ``n`` of each (all when None), the same stories at every length.

    ``tokenizer`` is needed by the generated sources (lengths are counted in its tokens).
    """
    if data.source in ("babi", "procedural"):
        if tokenizer is None:
            raise ValueError(
                f"source {data.source!r} generates samples and needs a tokenizer to count lengths"
            )
        return _generated(data, tasks, lengths, n, tokenizer, seed, split)
    if data.source == "hub":
        return _hub(data, tasks, lengths, n, split)
    return _local(data, tasks, lengths, n)
