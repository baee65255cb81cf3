"""Settings of a BABILong evaluation, embedded as-is in the recipe schema (``evaluation:`` section).

Examples:
    >>> s = EvalSettings(tasks=["qa1", "qa2"], lengths=["0k", "2k"], samples_per_task=10)
    >>> s.batch_size, s.max_new_tokens
    (1, 25)
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hercules.data.babilong import LENGTHS, length_tokens
from hercules.data.loaders import BabilongData

MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_SAMPLES = 100_000  # per task and length; BABILong has at most 1000 test samples per cell


def check_tasks(tasks: list[str]) -> list[str]:
    """``tasks`` unchanged if it is a non-empty list of distinct qa1..qa20; otherwise an error naming the bad ones."""
    bad = [t for t in tasks if not re.fullmatch(r"qa([1-9]|1[0-9]|20)", t)]
    if bad or not tasks:
        shown = bad[:5] if bad else tasks
        raise ValueError(f"tasks must be a non-empty list of qa1..qa20, got {shown}")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks lists {sorted({t for t in tasks if tasks.count(t) > 1})} more than once")
    return tasks


def check_lengths(lengths: list[str]) -> list[str]:
    """``lengths`` unchanged if it is a non-empty list of distinct BABILong lengths (0k, 1k, 2k, 4k ... 128k)."""
    if not lengths:
        raise ValueError(f"lengths must not be empty; choose from {', '.join(LENGTHS)}")
    for length in lengths:
        length_tokens(length)  # raises naming a value of the wrong form
        if length not in LENGTHS:
            raise ValueError(f"length {length!r} is not a BABILong length; choose from {', '.join(LENGTHS)}")
    if len(set(lengths)) != len(lengths):
        raise ValueError(f"lengths lists {sorted({n for n in lengths if lengths.count(n) > 1})} more than once")
    return lengths


class EvalSettings(BaseModel):
    """What to evaluate on BABILong and how (see :func:`hercules.evaluation.evaluate_babilong`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tasks: list[str] = Field(
        default_factory=lambda: ["qa1", "qa2", "qa3", "qa4", "qa5"],
        description="BABILong tasks qa1..qa20 (hub data has qa1..qa10 beyond 0k; procedural data qa1..qa5)",
    )
    lengths: list[str] = Field(
        default_factory=lambda: ["0k", "1k", "2k"],
        description="context lengths: 0k (facts only), 1k, 2k, 4k, 8k, 16k, 32k, 64k, 128k (N*1024 tokens)",
    )
    samples_per_task: int = Field(
        100, ge=1, le=MAX_SAMPLES, description="samples per task and length (the same stories at every length)"
    )
    batch_size: int = Field(
        1, ge=1, description="samples generated together (left padding; results do not depend on it)"
    )
    max_new_tokens: int = Field(25, ge=1, description="greedy decoding budget per answer")
    segment_length: int | None = Field(
        None,
        ge=16,
        description="read inputs longer than this many tokens segment by segment with memory carried "
        "(hercules.injection.segments); unset: the model's augment.segment_length, else the whole input at once",
    )
    max_input_tokens: int | None = Field(
        None,
        ge=1,
        description="longest input the model may read at once; unset: config.max_position_embeddings",
    )
    data: BabilongData = Field(default_factory=BabilongData, description="where the samples come from")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of sample selection and background placement")
    use_chat_template: bool = Field(
        True, description="wrap prompts in the tokenizer's chat template when it has one"
    )
    few_shot: bool = Field(True, description="include the worked examples in each prompt")
    resume: bool = Field(
        True, description="reuse predictions already in out_dir/predictions.jsonl from the same settings"
    )
    progress: bool = Field(True, description="show a progress bar and print the results table")

    _tasks = field_validator("tasks")(classmethod(lambda cls, tasks: check_tasks(tasks)))
    _lengths = field_validator("lengths")(classmethod(lambda cls, lengths: check_lengths(lengths)))

    def identity(self) -> dict:
        """Fields that decide each prediction (resuming requires them unchanged).

        Tasks, lengths and samples may grow between resumed calls: sample ``i`` is the same for any count.
        """
        return self.model_dump(
            mode="json", exclude={"batch_size", "resume", "progress", "tasks", "lengths", "samples_per_task"}
        )
