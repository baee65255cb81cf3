"""Recipes from YAML, with ``--set a.b.c=value`` overrides and one-line errors.

Examples:
    >>> raw = {"name": "demo", "training": {"lr": 1e-3}}
    >>> apply_overrides(raw, ["training.lr=3e-4", "seed=7"])["training"]["lr"]
    0.0003
"""

from __future__ import annotations

import difflib
import importlib
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hercules.recipes.schema import Recipe
from hercules.recipes.yaml_input import RecipeError, parse_yaml, read_yaml, short_repr

__all__ = ["RecipeError", "apply_overrides", "format_error", "load_recipe", "read_yaml", "validate_recipe"]


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``a.b.c=value`` entries in ``data`` (values parsed as YAML: numbers, lists, null, ...)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--set {item!r}: expected KEY.PATH=VALUE, for example training.lr=3e-4")
        value = _parse_value(text)
        node: Any = data
        parts = key.strip().split(".")
        for i, part in enumerate(parts[:-1]):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise RecipeError(f"--set {item!r}: {'.'.join(parts[:i])} is not a section")
            if node.get(part) is None:
                node[part] = {}
            elif not isinstance(node[part], (dict, list)):
                raise RecipeError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is a value, not a section")
            node = node[part]
        last = parts[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise RecipeError(f"--set {item!r}: {'.'.join(parts[:-1])} is not a section")
    return data


def _parse_value(text: str) -> Any:
    """A --set value as YAML, with ``3e-4`` read as a number (YAML 1.1 wants ``3.0e-4``)."""
    try:
        value = parse_yaml(text, "--set")
    except RecipeError:
        return text
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
        return float(value)
    return value


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes an annotation may hold (through Optional, unions, Annotated, lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated, list, tuple, dict):
        args = typing.get_args(annotation)[:1] if origin is typing.Annotated else typing.get_args(annotation)
        return [m for a in args for m in _models_in(a)]
    return []


def allowed_fields(loc: tuple[Any, ...]) -> list[str] | None:
    """Field names allowed at ``loc`` (the parent of a bad key) in the recipe schema, if it is a model."""
    candidates: list[type[BaseModel]] = [Recipe]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for model in candidates:
            if part in model.model_fields:
                nxt.extend(_models_in(model.model_fields[part].annotation))
        tagged = [m for m in nxt if part in _kinds(m)]
        matching = [m for m in candidates if part in _kinds(m)]
        candidates = matching or tagged or nxt
        if not candidates:
            return None
    return sorted({name for m in candidates for name in m.model_fields})


def _kinds(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("kind")
    return typing.get_args(field.annotation) if field is not None else ()


MAX_LINES = 20  # problems listed per recipe; the rest are counted
MAX_LINE = 400  # characters per problem line


def format_error(err: ValidationError, source: str = "recipe") -> str:
    """One line per problem: field path, what is wrong, the bad value (shortened), what is allowed."""
    lines = [_problem_line(e, source)[:MAX_LINE] for e in err.errors()[:MAX_LINES]]
    if err.error_count() > MAX_LINES:
        lines.append(f"{source}: ... and {err.error_count() - MAX_LINES} more problems")
    return "\n".join(lines)


def _problem_line(e: Any, source: str) -> str:
    loc = tuple(e["loc"])
    path = ".".join(short_repr(p, 40) if not isinstance(p, (str, int)) else str(p)[:40] for p in loc)
    path = path or "(top level)"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        allowed = allowed_fields(loc[:-1]) or []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        hint += f"; allowed: {', '.join(allowed)}" if allowed else ""
        return f"{source}: {path}: unknown field{hint}"
    if e["type"] == "missing":
        return f"{source}: {path}: required field is missing"
    bad = short_repr(e.get("input"))
    got = f" (got {bad})" if "input" in e and not isinstance(e["input"], dict) and bad not in msg else ""
    return f"{source}: {path}: {msg}{got}"


def load_recipe(path: str | Path, overrides: list[str] | None = None, plugins: bool = True) -> Recipe:
    """Read, override and validate a recipe; raises :class:`RecipeError` with a readable message.

    ``plugins=False`` does not import the modules listed under ``plugins:`` (importing runs their code); a
    component they would register is then an unknown kind.
    """
    data = apply_overrides(read_yaml(path), overrides or [])
    return validate_recipe(data, source=str(path), plugins=plugins)


def import_plugins(data: dict[str, Any], source: str = "recipe") -> None:
    """Import the modules listed under ``plugins`` (their components register themselves on import)."""
    modules = data.get("plugins") or []
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise RecipeError(f"{source}: plugins = {short_repr(modules)}: expected a list of module names, e.g. "
                          "[my_package.memory]")
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - any import failure is the recipe's problem to report
            raise RecipeError(
                f"{source}: plugins: cannot import {short_repr(name)} ({type(err).__name__}: "
                f"{str(err)[:MAX_LINE]}); install the package that provides it or put its folder on PYTHONPATH"
            ) from None


def validate_recipe(data: dict[str, Any], source: str = "recipe", plugins: bool = True) -> Recipe:
    """``data`` as a :class:`Recipe` (importing its plugins first unless ``plugins`` is false)."""
    if plugins:
        import_plugins(data, source)
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise RecipeError(format_error(err, source)) from None
    except RecursionError:
        raise RecipeError(f"{source}: nested too deeply to validate") from None
