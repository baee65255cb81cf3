"""Recipes: one validated YAML per experiment, and the runner that executes it.

Examples:
    >>> from hercules.recipes import load_recipe
    >>> load_recipe("recipes/quickstart.yaml").backbone.name  # doctest: +SKIP
    'smollm2-135m'
"""

from hercules.recipes.loading import RecipeError, apply_overrides, load_recipe, validate_recipe
from hercules.recipes.runner import run_recipe
from hercules.recipes.schema import Recipe

__all__ = ["Recipe", "RecipeError", "apply_overrides", "load_recipe", "run_recipe", "validate_recipe"]
