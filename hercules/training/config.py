"""Typed settings of a training run (the ``training:`` section of a recipe).

Every field carries a description: it is what ``hercules recipe show`` and ``--help`` print.

Examples:
    >>> from hercules.training.config import TrainingSettings
    >>> s = TrainingSettings(max_steps=10, batch_size=2, grad_accumulation=4, lr=1e-3)
    >>> s.effective_batch_size(num_processes=2)
    16
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_Beta = Annotated[float, Field(ge=0, lt=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ScheduleSettings(_Section):
    """Learning-rate schedule: linear warm-up from 0, then constant or cosine decay to ``min_lr_ratio``."""

    kind: Literal["constant", "cosine", "linear"] = Field(
        "constant", description="shape after warm-up: constant, cosine decay or linear decay"
    )
    warmup_steps: int = Field(0, ge=0, description="optimizer steps of linear warm-up from 0 to the peak lr")
    min_lr_ratio: float = Field(
        0.0, ge=0.0, le=1.0, description="final lr as a fraction of the peak lr (cosine and linear)"
    )


class CheckpointSettings(_Section):
    """Where and how often the run saves a resumable checkpoint."""

    every: int = Field(0, ge=0, description="save a checkpoint every N optimizer steps (0: only at the end)")
    keep_last: int = Field(2, ge=1, description="number of most recent checkpoints kept on disk")
    keep_best: bool = Field(True, description="also keep the checkpoint with the lowest validation loss")
    save_final: bool = Field(True, description="save a checkpoint when training ends")


class CurriculumStage(_Section):
    """One stage of a curriculum over the number of segments (RMT and ARMT train so, from short to long)."""

    until_step: int = Field(ge=1, description="the stage holds for optimizer steps before this one")
    max_segments: int = Field(ge=1, description="train only on items of at most this many segments")


class SegmentSettings(_Section):
    """Training across segments: each item is read segment by segment (its ``segment_lengths``), attention sees
    one segment at a time and only the memory carries what came before (:mod:`hercules.training.segment_loss`)."""

    bptt_segments: int | None = Field(
        None, ge=1, description="truncated backpropagation: gradients cross at most this many segment boundaries "
        "(null: through every segment)"
    )
    activation_checkpointing: bool = Field(
        True, description="recompute each segment's activations in the backward, so that activation memory stays "
        "flat in the number of segments"
    )
    curriculum: list[CurriculumStage] = Field(
        [], description="stages of growing max_segments, in order; after the last stage every item is used"
    )
    frozen_prefix: bool = Field(
        False, description="keep what enters the first trained (or memory) layer for each segment, computed at "
        "its first visit, and run only the layers above it (hercules.training.prefix_cache): several times faster "
        "for several epochs over the same items when only the top layers train; costs tokens × hidden floats of "
        "CPU memory"
    )

    @model_validator(mode="after")
    def _ordered(self) -> SegmentSettings:
        steps = [s.until_step for s in self.curriculum]
        if steps != sorted(set(steps)):
            raise ValueError("segments.curriculum: until_step must increase from one stage to the next")
        return self

    def max_segments(self, step: int) -> int | None:
        """The largest number of segments an item may have at optimizer step ``step`` (None: no limit)."""
        return next((s.max_segments for s in self.curriculum if step < s.until_step), None)


class TrainingSettings(_Section):
    """Optimisation settings. Learning rates apply per parameter group: memory/injection vs LoRA.

    A parameter whose name contains one of ``lora_patterns`` belongs to the LoRA group (``lora_lr``);
    every other trainable parameter (memory, injection, gates, anything fully fine-tuned) uses ``lr``.
    """

    max_steps: int | None = Field(None, ge=1, description="number of optimizer steps (or give epochs)")
    epochs: float | None = Field(
        None, gt=0, description="passes over the training data (if max_steps is unset)"
    )
    batch_size: int = Field(1, ge=1, description="sequences per micro-batch on each process")
    grad_accumulation: int = Field(1, ge=1, description="micro-batches accumulated per optimizer step")
    lr: float = Field(
        1e-3, gt=0, allow_inf_nan=False, description="peak learning rate of the memory/injection parameters"
    )
    lora_lr: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="peak learning rate of the LoRA parameters (default: lr)"
    )
    lora_patterns: list[str] = Field(
        ["lora_"], description="name fragments that put a parameter in the LoRA group"
    )
    weight_decay: float = Field(
        0.0, ge=0, description="AdamW weight decay (never applied to biases and norms)"
    )
    betas: tuple[_Beta, _Beta] = Field((0.9, 0.999), description="AdamW betas, each in [0, 1)")
    eps: float = Field(1e-8, gt=0, allow_inf_nan=False, description="AdamW epsilon")
    max_grad_norm: float | None = Field(
        1.0, gt=0, description="clip the global gradient norm (null: no clipping)"
    )
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings, description="learning-rate schedule")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="mixed precision: auto is bf16 on GPU and fp32 on CPU"
    )
    eval_every: int = Field(
        0, ge=0, description="validation loss every N optimizer steps (0: only at the end)"
    )
    num_validations: int | None = Field(
        None, ge=1, description="spread this many validations evenly over the run (overrides eval_every)"
    )
    validate_at_start: bool = Field(
        True, description="measure the validation loss once before the first step"
    )
    babilong_every: int = Field(
        0, ge=0, description="BABILong evaluation every N steps during training (0: off)"
    )
    log_every: int = Field(1, ge=1, description="write training metrics every N optimizer steps")
    max_skipped_steps: int = Field(
        10, ge=0, description="stop the run after this many steps skipped for a NaN/inf loss or gradient"
    )
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings, description="checkpointing")
    resume: str | None = Field(
        None, description="resume from a checkpoint folder, or 'latest' for the newest one of this run"
    )
    sparse_logits: bool = Field(
        True, description="compute logits only at labelled positions (same loss; faster fine-tuning on answers)"
    )
    gradient_checkpointing: bool = Field(False, description="trade compute for activation memory")
    segments: SegmentSettings | None = Field(
        None, description="train across segments, the memory carrying the context (items need segment_lengths)"
    )

    @model_validator(mode="after")
    def _length_given(self) -> TrainingSettings:
        if self.max_steps is None and self.epochs is None:
            raise ValueError("give training.max_steps or training.epochs")
        return self

    def effective_batch_size(self, num_processes: int = 1) -> int:
        """Sequences per optimizer step over all processes."""
        return self.batch_size * self.grad_accumulation * num_processes

    def validation_interval(self, total_steps: int) -> int:
        """Steps between validations (``num_validations`` spread evenly, else ``eval_every``; 0 = end only)."""
        if self.num_validations:
            return max(1, total_steps // self.num_validations)
        return self.eval_every


class TrackingSettings(_Section):
    """What a run records besides ``metrics.jsonl`` (always written)."""

    report_to: list[Literal["wandb", "tensorboard"]] = Field(
        [], description="Accelerate trackers to log to (install the 'tracking' extra or wandb)"
    )
    project: str = Field("hercules", description="project name for W&B / TensorBoard")
    progress: bool = Field(True, description="show a rich progress bar with loss, tokens/s and ETA")
    plots: bool = Field(True, description="write loss_curve.png and memory_diagnostics.png in the run folder")
