"""Run a recipe that names your own plugins: import your package, then load and run the recipe."""

import tempfile

import my_plugins  # noqa: F401 - registers lowrank, fixed, tanh and after_attention

from hercules.injection import memory_layers
from hercules.recipes import load_recipe, run_recipe
from hercules.recipes.runner import build_model

with tempfile.TemporaryDirectory() as out:
    recipe = load_recipe("docs/examples/plugin_recipe.yaml", overrides=[f"output_dir={out}"])
    model, tokenizer = build_model(recipe)  # the model the run would use: our memory in the last layer
    assert [type(layer).__name__ for layer in memory_layers(model).values()] == ["MemoryAfterAttention"]
    summary = run_recipe(recipe)
    assert summary["evaluation"]["hercules"]["accuracy"]["qa1"]["0k"] is not None
