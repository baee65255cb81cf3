"""Recipes: one validated YAML per experiment, and the runner that executes it.

Examples:
    >>> from hercules.recipes import load_recipe
    >>> load_recipe("recipes/quickstart.yaml").backbone.name  # doctest: +SKIP
    'smollm2-135m'
"""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "Recipe": "hercules.recipes.schema",
    "RecipeError": "hercules.recipes.loading",
    "apply_overrides": "hercules.recipes.loading",
    "load_recipe": "hercules.recipes.loading",
    "run_recipe": "hercules.recipes.runner",
    "validate_recipe": "hercules.recipes.loading",
}
lazy_package(__name__, _EXPORTS)

__all__ = ["Recipe", "RecipeError", "apply_overrides", "load_recipe", "run_recipe", "validate_recipe"]
