"""Settings of a BABILong evaluation, embedded as-is in the recipe schema (``evaluation:`` section).

Examples:
    >>> s = EvalSettings(tasks=["qa1", "qa2"], lengths=["0k", "2k"], samples_per_task=10)
    >>> s.batch_size, s.max_new_tokens
    (1, 25)
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hercules.data.babilong import length_tokens
from hercules.data.loaders import BabilongData


class EvalSettings(BaseModel):
    """What to evaluate on BABILong and how (see :func:`hercules.evaluation.evaluate_babilong`)."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(
        default_factory=lambda: ["qa1", "qa2", "qa3", "qa4", "qa5"],
        description="BABILong tasks qa1..qa20 (hub data has qa1..qa10 beyond 0k; procedural data qa1..qa5)",
    )
    lengths: list[str] = Field(
        default_factory=lambda: ["0k", "1k", "2k"],
        description="context lengths: 0k (facts only), 1k, 2k, 4k, 8k, 16k, 32k, 64k, 128k (N*1024 tokens)",
    )
    samples_per_task: int = Field(
        100, ge=1, description="samples per task and length (the same stories at every length)"
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
    seed: int = Field(0, description="seed of sample selection and background placement")
    use_chat_template: bool = Field(
        True, description="wrap prompts in the tokenizer's chat template when it has one"
    )
    few_shot: bool = Field(True, description="include the worked examples in each prompt")
    resume: bool = Field(
        True, description="reuse predictions already in out_dir/predictions.jsonl from the same settings"
    )
    progress: bool = Field(True, description="show a progress bar and print the results table")

    @field_validator("tasks")
    @classmethod
    def _check_tasks(cls, tasks: list[str]) -> list[str]:
        bad = [t for t in tasks if not re.fullmatch(r"qa([1-9]|1[0-9]|20)", t)]
        if bad or not tasks:
            raise ValueError(f"tasks must be a non-empty list of qa1..qa20, got {bad or tasks}")
        return tasks

    @field_validator("lengths")
    @classmethod
    def _check_lengths(cls, lengths: list[str]) -> list[str]:
        if not lengths:
            raise ValueError("lengths must not be empty; for example ['0k', '1k', '2k']")
        for length in lengths:
            length_tokens(length)  # raises naming the bad value
        return lengths

    def identity(self) -> dict:
        """Fields that decide each prediction (resuming requires them unchanged).

        Tasks, lengths and samples may grow between resumed calls: sample ``i`` is the same for any count.
        """
        return self.model_dump(
            mode="json", exclude={"batch_size", "resume", "progress", "tasks", "lengths", "samples_per_task"}
        )
