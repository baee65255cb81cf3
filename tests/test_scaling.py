"""Two processes (DDP, and FSDP with sharded parameters, on CPU through `accelerate launch`) training memory + LoRA
on a tiny backbone give the loss curve and final weights of one process with twice the gradient accumulation: the
micro-batch stream is split by rank and gradients are averaged, so the optimizer steps are the same up to float
summation order.

Accelerate 1.15 runs `accelerate launch --cpu --num_processes 2` as ONE process unless an MPI hostfile is given
(its `--cpu` path is the simple launcher), so the two CPU processes are started with `--multi_gpu` and no visible
GPU, which spawns them with torchrun over gloo; the test checks that the run really had two processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from safetensors.torch import load_file

RECIPE = """# accelerate launch --multi_gpu --num_processes 2 -m hercules.cli.main recipe run scale.yaml
name: scale
output_dir: {out}
backbone: {{name: "tiny:llama"}}
augment: {{injection: {{kind: mac}}, layers: [-1]}}
peft: {{preset: memory_lora, lora_r: 4}}
data: {{kind: babilong, tasks: [qa1], lengths: [0k], samples: 24, val_samples: 4, few_shot: false}}
training: {{max_steps: 4, batch_size: 2, grad_accumulation: 2, lr: 1.0e-3, weight_decay: 0.1,
           schedule: {{kind: cosine, warmup_steps: 1}}, eval_every: 2}}
tracking: {{progress: false, plots: false}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _records(run_dir, kind):
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


# How each data-parallel mode is asked of `accelerate launch` (CPU processes talk through gloo).
LAUNCHERS = {
    "ddp": ["--multi_gpu"],
    "fsdp": ["--use_fsdp", "--fsdp_version", "2"],  # parameters sharded over the two processes
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(LAUNCHERS))
def test_two_processes_match_one_process_with_double_accumulation(tmp_path, mode):
    recipe = tmp_path / "scale.yaml"
    recipe.write_text(RECIPE.format(out=tmp_path / "runs"))
    env = os.environ | {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    cli = ["-m", "hercules.cli.main", "recipe", "run", str(recipe)]
    two = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", *LAUNCHERS[mode], "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(_free_port()), *cli, "--set", "name=two"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, *cli, "--set", "name=one", "--set", "training.grad_accumulation=4"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]

    runs = tmp_path / "runs"
    state = json.loads((runs / "two" / "checkpoints" / "step-00000004" / "trainer_state.json").read_text())
    assert state["world"] == 2
    train_two, train_one = _records(runs / "two", "train"), _records(runs / "one", "train")
    assert [r["step"] for r in train_two] == [r["step"] for r in train_one] == [1, 2, 3, 4]
    for a, b in zip(train_two, train_one, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
        assert a["tokens"] == b["tokens"]  # the same micro-batches were read
        assert a["lr"] == pytest.approx(b["lr"])
    val_two, val_one = _records(runs / "two", "val"), _records(runs / "one", "val")
    assert [r["val_loss"] for r in val_two] == pytest.approx([r["val_loss"] for r in val_one], rel=1e-4)
    w_two = load_file(str(runs / "two" / "model" / "hercules.safetensors"))
    w_one = load_file(str(runs / "one" / "model" / "hercules.safetensors"))
    assert any("memory" in name for name in w_one) and any("lora_" in name for name in w_one)
    for name in w_one:
        assert (w_two[name] - w_one[name]).abs().max() < 1e-4, name
