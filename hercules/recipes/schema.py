"""The recipe: one validated YAML that says which backbone, memory, training data, training and evaluation.

Every section is a typed pydantic model with ``extra="forbid"``: a misspelt key is an error that names it and the
allowed keys (see :mod:`hercules.recipes.loading`). Sections left out (or ``null``) switch a stage off: no
``augment`` is the backbone without memory, no ``peft`` trains memory parameters only, no ``training`` evaluates
without training.

Examples:
    >>> r = Recipe.model_validate({"name": "demo", "backbone": {"name": "tiny:llama"},
    ...                            "evaluation": {"tasks": ["qa1"], "lengths": ["0k"], "samples_per_task": 2}})
    >>> r.run_dir().name
    'demo'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hercules.data.fineweb import TextData
from hercules.data.loaders import BabilongData
from hercules.evaluation.settings import MAX_SAMPLES, MAX_SEED, EvalSettings, check_lengths, check_tasks
from hercules.injection.config import AugmentConfig
from hercules.injection.peft import PeftSettings
from hercules.training.config import TrackingSettings, TrainingSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BackboneSettings(_Section):
    """The pretrained model that receives the memory."""

    name: str = Field(
        description="hub id (from the local HF cache), local model folder, 'smollm2-135m' or 'gemma3-270m' "
        "(offline, from PyPI), or 'tiny:<llama|qwen2|qwen3|gemma3>' (tiny random model for tests)"
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="weight dtype when loading (float32 on CPU; mixed precision is training.precision)"
    )

    @field_validator("name")
    @classmethod
    def _known_tiny(cls, name: str) -> str:
        if name.startswith("tiny:"):
            from hercules.backbones.tiny import FAMILIES  # imports transformers: only for tiny names

            family = name.removeprefix("tiny:")
            if family not in FAMILIES:
                raise ValueError(f"unknown tiny model family {family!r}; valid choices: "
                                 f"{', '.join(f'tiny:{f}' for f in FAMILIES)}")
        if not name.strip():
            raise ValueError("the backbone name is empty; give a hub id, a model folder or a built-in name")
        return name


class BabilongTrainData(_Section):
    """Question answering on BABILong training samples; the loss is on the answer tokens by default."""

    kind: Literal["babilong"] = "babilong"
    source: BabilongData = Field(default_factory=BabilongData, description="where the samples come from")
    tasks: list[str] = Field(["qa1"], description="BABILong tasks to train on (qa1..qa20)")
    lengths: list[str] = Field(["0k"], description="context lengths of the training samples (0k, 1k, 2k, 4k ... 128k)")
    samples: int = Field(200, ge=1, le=MAX_SAMPLES, description="training samples per task and length")
    val_samples: int = Field(20, ge=0, le=MAX_SAMPLES, description="held-out samples per task and length for the validation loss")
    answer: Literal["target", "sentence"] = Field(
        "target",
        description="what the model learns to reply: the bare target ('garden'), or the sentence the location "
        "prompts ask for ('Mary is in the garden.') where the question reads 'Where is X?', the target otherwise",
    )
    loss_on: Literal["answer", "all"] = Field("answer", description="train on the answer only, or on every token")
    few_shot: bool = Field(True, description="include the prompt's worked examples (as the evaluation does)")
    use_chat_template: bool = Field(True, description="wrap prompts in the tokenizer's chat template")

    _tasks = field_validator("tasks")(classmethod(lambda cls, tasks: check_tasks(tasks)))
    _lengths = field_validator("lengths")(classmethod(lambda cls, lengths: check_lengths(lengths)))


class LanguageModelData(TextData):
    """Language modelling on FineWeb-Edu (streamed) or local text files, packed into fixed-length blocks."""

    kind: Literal["lm"] = "lm"
    val_blocks: int = Field(100, ge=0, le=1_000_000, description="validation blocks, taken before the num_blocks training blocks")


DataSettings = Annotated[BabilongTrainData | LanguageModelData, Field(discriminator="kind")]


class Recipe(_Section):
    """A whole experiment: backbone → (augment) → (PEFT) → (train) → (evaluate, optionally vs the backbone)."""

    name: str = Field(description="run name; the run folder is output_dir/name")
    description: str = Field("", description="what the recipe is for")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of model initialisation, data order and sampling")
    output_dir: Path = Field(Path("runs"), description="folder under which the run folder is created")
    plugins: list[str] = Field(
        [], description="Python modules imported before the rest of the recipe is validated, so that the "
        "components they register (memory models, rules, gates, injections) can be named by kind",
    )
    backbone: BackboneSettings = Field(description="the pretrained model")
    augment: AugmentConfig | None = Field(None, description="memory + injection (null: backbone without memory)")
    peft: PeftSettings | None = Field(None, description="LoRA / trainable-parameter preset (null: memory only; full fine-tuning without augment)")
    data: DataSettings | None = Field(None, description="training data (required with training)")
    training: TrainingSettings | None = Field(None, description="optimisation (null: evaluate without training)")
    evaluation: EvalSettings | None = Field(None, description="BABILong evaluation after training")
    compare_with_backbone: bool = Field(
        False, description="also evaluate the plain backbone and print both side by side"
    )
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="progress, plots, trackers")

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if self.training is not None and self.data is None:
            raise ValueError("training needs a data section (kind: babilong | lm)")
        if self.training is None and self.evaluation is None:
            raise ValueError("the recipe does nothing: give a training section, an evaluation section, or both")
        if self.compare_with_backbone and self.evaluation is None:
            raise ValueError("compare_with_backbone needs an evaluation section")
        return self

    def run_dir(self) -> Path:
        return self.output_dir / self.name

    def summary(self) -> dict[str, Any]:
        """The recipe as plain JSON data (for trackers and the run folder)."""
        return self.model_dump(mode="json")
