"""The tables that the docs build generates from the code (docs/hooks/hercules_docs.py) leave nothing out."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("hercules_docs", ROOT / "docs" / "hooks" / "hercules_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hercules_docs"] = module
    spec.loader.exec_module(module)
    return module


def field_paths(model: type, prefix: str = "") -> set[str]:
    """Every dotted field path of a pydantic model, nested models included (dict values as ``.<key>``)."""
    from pydantic import BaseModel

    paths = set()
    for name, field in model.model_fields.items():
        path = prefix + name
        paths.add(path)
        stack, nested = [field.annotation], []
        while stack:
            annotation = stack.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                if not annotation.__name__.endswith("PluginConfig") and annotation.__name__ != "PluginConfig":
                    nested.append(annotation)
                continue
            stack += list(getattr(annotation, "__args__", ()))
        text = str(field.annotation)
        suffix = ".<key>" if "dict[" in text else "[]" if "list[" in text and nested else ""
        for sub in nested:
            paths |= field_paths(sub, f"{path}{suffix}.")
    return paths


def test_recipe_table_lists_every_field(hooks) -> None:
    from hercules.recipes.schema import Recipe

    table = hooks.config_fields("hercules.recipes.schema:Recipe", sectioned=True)
    listed = set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.M))
    # A model met twice is listed once; its second place refers to the first ("fields as under `x`").
    same_as = dict(re.findall(r"^\| `([^`]+)` \|.*\(fields as under `([^`]+)`\) \|$", table, flags=re.M))

    def covered(path: str) -> bool:
        if path in listed:
            return True
        return any(path.startswith(f"{alias}.") and covered(target + path[len(alias):])
                   for alias, target in same_as.items())

    missing = {path for path in field_paths(Recipe) if not covered(path)}
    assert not missing, f"recipe fields missing from the generated table: {sorted(missing)}"


@pytest.mark.parametrize("family", ["model", "rule", "gate", "injection"])
def test_component_tables_list_every_plugin_and_field(hooks, family: str) -> None:
    module, attr = hooks.REGISTRIES[family]
    registry = getattr(importlib.import_module(module), attr)
    text = hooks.components(family)
    for name in registry.names():
        assert f"### `{name}`" in text, f"{family} {name!r} missing"
        for field in registry.config(name).model_fields:
            assert f"| `{field}` |" in text, f"{family} {name!r}: field {field!r} missing"


def test_cli_reference_lists_every_command(hooks) -> None:
    import typer

    from hercules.cli.main import app

    text = hooks.cli_reference()

    def walk(command, path: list[str]) -> None:
        if len(path) > 1:
            assert f"`{' '.join(path)}`" in text, f"{' '.join(path)} missing from the CLI reference"
        if hasattr(command, "list_commands"):
            ctx = command.context_class(command, info_name=path[-1])
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name])

    walk(typer.main.get_command(app), ["hercules"])


def test_the_site_loads_its_scripts_from_itself_and_mathjax_is_installed():
    import yaml

    spec = importlib.util.spec_from_file_location("offline_assets", ROOT / "docs" / "hooks" / "offline_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.mathjax_script().stat().st_size > 1_000_000  # the whole single-file MathJax build
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python/name:", ""))
    scripts = config["extra_javascript"]
    assert module.SITE_PATH in scripts and not [s for s in scripts if "://" in s]
    assert "offline" in config["plugins"] and config["theme"]["font"] is False
