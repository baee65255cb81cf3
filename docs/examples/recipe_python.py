"""A recipe from Python: validate a mapping (what a YAML file holds), override fields, run it."""

import tempfile

from hercules.recipes import RecipeError, apply_overrides, run_recipe, validate_recipe

with tempfile.TemporaryDirectory() as out:
    raw = {
        "name": "tiny-eval",
        "output_dir": out,
        "backbone": {"name": "tiny:llama"},  # a tiny random Llama, built in-process
        "evaluation": {"tasks": ["qa1"], "lengths": ["0k"], "samples_per_task": 2, "max_new_tokens": 4,
                       "progress": False},
    }
    # `--set` on the command line does the same: values are parsed as YAML.
    recipe = validate_recipe(apply_overrides(raw, ["seed=1", "evaluation.samples_per_task=3"]))
    assert recipe.evaluation.samples_per_task == 3

    # A misspelt field is an error that names it, suggests the right one and lists what is allowed.
    try:
        validate_recipe(apply_overrides(raw, ["evaluation.sample_per_task=3"]))
    except RecipeError as err:
        assert "samples_per_task" in str(err)
        print(err)
    else:
        raise AssertionError("the misspelt field should have been rejected")

    summary = run_recipe(recipe)  # no training section: evaluate only; writes summary.json in out/tiny-eval
    print(summary["evaluation"])
    assert set(summary["evaluation"]) == {"backbone"}
