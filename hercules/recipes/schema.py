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
            from hercules.backbones.names import TINY_FAMILIES as FAMILIES

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
    questions: Literal["one", "every_person"] = Field(
        "one",
        description="one: the sample's question, as evaluated; every_person (qa1 only): after the sample's own "
        "question and answer, ask where each other person of the facts is, with the loss on every answer (more "
        "supervision per story, and recalling the last place read no longer answers them all)",
    )
    few_shot: bool = Field(True, description="include the prompt's worked examples (as the evaluation does)")
    use_chat_template: bool = Field(True, description="wrap prompts in the tokenizer's chat template")
    segment_length: int | None = Field(
        None, ge=16, description="lay out samples longer than this as the segmented evaluation reads them: the "
        "context in segments of this many tokens, then the prompt, question and answer in a final segment whose "
        "attention never sees the context (needs training.segments; must equal evaluation.segment_length)"
    )

    _tasks = field_validator("tasks")(classmethod(lambda cls, tasks: check_tasks(tasks)))
    _lengths = field_validator("lengths")(classmethod(lambda cls, lengths: check_lengths(lengths)))

    @model_validator(mode="after")
    def _every_person_is_qa1(self) -> BabilongTrainData:
        if self.questions == "every_person" and self.tasks != ["qa1"]:
            raise ValueError(f"questions: every_person asks where each person is, which only qa1's facts say; "
                             f"tasks is {self.tasks}: set tasks: [qa1] or questions: one")
        if self.questions == "every_person" and self.use_chat_template:
            raise ValueError("questions: every_person appends plain 'Question: ... Answer:' turns, which a chat "
                             "template would not frame: set use_chat_template: false (and the same in evaluation)")
        return self


class LanguageModelData(TextData):
    """Language modelling on FineWeb-Edu (streamed) or local text files, packed into fixed-length blocks."""

    kind: Literal["lm"] = "lm"
    val_blocks: int = Field(100, ge=0, le=1_000_000, description="validation blocks, taken before the num_blocks training blocks")


class RecallTrainData(_Section):
    """Multi-query associative recall spread over segments (:mod:`hercules.data.recall`): pairs in the first
    segment(s), filler segments, then the queries; the loss is on the queried values (needs training.segments)."""

    kind: Literal["recall"] = "recall"
    pairs: int = Field(8, ge=1, le=4096, description="key-value pairs per sample")
    gaps: list[int] = Field([4], description="filler segments between the pairs and the queries (one cell each)")
    segment_length: int = Field(32, ge=4, le=65536, description="tokens per segment (the attention window)")
    samples: int = Field(2000, ge=1, le=10_000_000, description="training samples per gap")
    val_samples: int = Field(64, ge=0, le=1_000_000, description="validation samples per gap")
    num_keys: int = Field(96, ge=1, description="distinct key tokens")
    num_values: int = Field(96, ge=2, description="distinct value tokens (chance accuracy is 1/num_values)")
    full_attention: bool = Field(
        False, description="one segment per sample (attention over the whole input): the upper-bound twin"
    )

    @model_validator(mode="after")
    def _gaps(self) -> RecallTrainData:
        if not self.gaps or min(self.gaps) < 0:
            raise ValueError("gaps must be a non-empty list of filler-segment counts >= 0, e.g. [4]")
        return self


class RecallEvalSettings(_Section):
    """Recall accuracy by pairs and gap, for the model and its twins (:mod:`hercules.evaluation.recall`)."""

    pairs: list[int] = Field([8], description="pairs per sample, one row each (a capacity curve)")
    gaps: list[int] = Field([4], description="filler segments between pairs and queries, one column each")
    samples: int = Field(128, ge=1, le=1_000_000, description="test samples per cell (a seed disjoint from training)")
    batch_size: int = Field(32, ge=1, description="samples per forward pass")


DataSettings = Annotated[BabilongTrainData | LanguageModelData | RecallTrainData, Field(discriminator="kind")]
Baseline = Literal["no_memory", "full_attention"]


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
    recall_evaluation: RecallEvalSettings | None = Field(
        None, description="recall accuracy after training (with data.kind: recall)"
    )
    compare_with_backbone: bool = Field(
        False, description="also evaluate the plain backbone and print both side by side"
    )
    baselines: list[Baseline] = Field(
        [], description="twins trained on the same data for the same steps with the same peft, then evaluated "
        "the same way: no_memory (the recipe without augment: LoRA only, the fair baseline of a memory), "
        "full_attention (no memory, each sample read whole: the upper bound of recall)"
    )
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="progress, plots, trackers")

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if self.training is not None and self.data is None:
            raise ValueError("training needs a data section (kind: babilong | lm)")
        if self.training is None and self.evaluation is None and self.recall_evaluation is None:
            raise ValueError("the recipe does nothing: give a training section, an evaluation section, or both")
        if self.compare_with_backbone and self.evaluation is None:
            raise ValueError("compare_with_backbone needs an evaluation section")
        self._check_segments()
        if self.baselines and (self.training is None or self.augment is None):
            raise ValueError("baselines are twins of a trained model with memory: give augment and training")
        if self.baselines and (self.peft is None or self.peft.preset == "memory"):
            raise ValueError("baselines need peft.preset memory_lora or full: without memory, a memory-only "
                             "twin would have nothing to train")
        if "full_attention" in self.baselines and not isinstance(self.data, RecallTrainData):
            raise ValueError("baselines: full_attention is defined for data.kind: recall")
        seg = (getattr(self.augment, "segment_length", None), getattr(self.evaluation, "segment_length", None))
        if None not in seg and seg[0] != seg[1]:
            raise ValueError(
                f"augment.segment_length={seg[0]} and evaluation.segment_length={seg[1]} disagree; set one of them "
                "(the evaluation uses augment.segment_length when its own is unset)"
            )
        return self

    def _check_segments(self) -> None:
        """Segmented data, training.segments and the evaluation's segment length go together."""
        segmented = isinstance(self.data, RecallTrainData) or (
            isinstance(self.data, BabilongTrainData) and self.data.segment_length is not None
        )
        if self.training is not None and segmented != (self.training.segments is not None):
            raise ValueError(
                "training.segments is set but the data are not laid out in segments (set data.segment_length)"
                if not segmented else
                "the data are laid out in segments: set training.segments (e.g. `segments: {}`)"
            )
        if isinstance(self.data, BabilongTrainData) and self.data.segment_length and self.evaluation and (
            self.evaluation.segment_length != self.data.segment_length
        ):
            raise ValueError(
                f"data.segment_length={self.data.segment_length} but evaluation.segment_length="
                f"{self.evaluation.segment_length}: train in the layout that evaluation reads (set both alike)"
            )
        if self.recall_evaluation is not None and not isinstance(self.data, RecallTrainData):
            raise ValueError("recall_evaluation needs data.kind: recall (it reuses its segment length and vocabulary)")

    @field_validator("name")
    @classmethod
    def _name_inside_output_dir(cls, name: str) -> str:
        """The run folder must lie inside output_dir: no absolute path, no '..', nothing empty."""
        parts = name.replace("\\", "/").split("/")
        if not name.strip() or name.startswith(("/", "\\")) or Path(name).is_absolute() or any(
            part in ("", ".", "..") for part in parts
        ):
            raise ValueError(
                f"name {name!r} must be a relative folder name inside output_dir (letters, digits, '-', '_', "
                f"'.'; subfolders with '/'), without '..', '.' or a leading '/'"
            )
        return name

    def run_dir(self) -> Path:
        """``output_dir/name`` (the name was checked to stay inside ``output_dir``)."""
        return self.output_dir / self.name

    def summary(self) -> dict[str, Any]:
        """The recipe as plain JSON data (for trackers and the run folder)."""
        return self.model_dump(mode="json")
