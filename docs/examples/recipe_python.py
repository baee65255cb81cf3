"""A recipe from Python: load a YAML recipe with overrides, see a validation error, run every stage."""

import json
import tempfile
from pathlib import Path

from hercules.recipes import RecipeError, load_recipe, run_recipe

with tempfile.TemporaryDirectory() as out:
    # `--set` on the command line does the same; values are parsed as YAML.
    recipe = load_recipe("docs/examples/tiny_recipe.yaml", overrides=[f"output_dir={out}", "training.lr=2e-3"])
    assert recipe.training.lr == 2e-3 and recipe.augment.injection.kind == "mac"

    # A misspelt field is an error that names it, suggests the right one and lists what is allowed.
    try:
        load_recipe("docs/examples/tiny_recipe.yaml", overrides=["training.learning_rate=2e-3"])
    except RecipeError as err:
        assert "learning_rate" in str(err)
        print(err)
    else:
        raise AssertionError("the misspelt field should have been rejected")

    summary = run_recipe(recipe)  # build, augment, PEFT, train, evaluate with the backbone beside it
    run_dir = Path(out) / "tiny-recipe"
    print(json.dumps(summary["evaluation"]))
    assert summary["training"]["steps"] == 2 and set(summary["evaluation"]) == {"backbone", "hercules"}
    assert {"recipe.yaml", "metrics.jsonl", "summary.json", "eval", "model"} <= {p.name for p in run_dir.iterdir()}
