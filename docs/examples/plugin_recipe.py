"""Use a recipe that names your own plugins: import your package, then load the recipe (and run it)."""

import my_plugins  # noqa: F401 - registers lowrank, fixed, tanh and after_attention (the recipe also lists it)
import torch

from hercules.injection import memory_layers
from hercules.recipes import load_recipe
from hercules.recipes.runner import build_model

recipe = load_recipe("docs/examples/plugin_recipe.yaml")
assert recipe.augment.memory.model.kind == "lowrank" and recipe.augment.injection.gate.kind == "tanh"

model, tokenizer = build_model(recipe)  # the model `run_recipe(recipe)` would train and evaluate
layer = memory_layers(model)[1]  # the last of the tiny model's two decoder layers
assert type(layer).__name__ == "MemoryAfterAttention" and type(layer.memory.model).__name__ == "LowRankMemory"
with torch.no_grad():
    logits = model(tokenizer("Mary went to the kitchen.", return_tensors="pt").input_ids).logits
print(logits.shape)
