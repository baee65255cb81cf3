"""Shared CLI helpers: exit codes, error reporting, field tables built from pydantic descriptions."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console

OK, FAILURE, BAD_INPUT = 0, 1, 2


class _LazyConsole:
    """A rich Console created at first use, so that COLUMNS and the output stream are read when a command runs."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs

    def __getattr__(self, name: str) -> Any:
        return getattr(Console(**self._kwargs), name)


console: Console = _LazyConsole()  # type: ignore[assignment]
err_console: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]


@contextmanager
def exit_codes() -> Iterator[None]:
    """Map exceptions to exit codes: bad input (recipe, value, missing file) → 2, anything else → 1.

    Set ``HERCULES_DEBUG=1`` to see the traceback instead.
    """
    from hercules.recipes.loading import RecipeError

    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except (RecipeError, FileNotFoundError) as err:
        if os.environ.get("HERCULES_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        raise typer.Exit(BAD_INPUT) from None
    except Exception as err:
        if os.environ.get("HERCULES_DEBUG"):
            raise
        err_console.print(f"[bold red]failed:[/] {type(err).__name__}: {err}", highlight=False, soft_wrap=True)
        err_console.print("(set HERCULES_DEBUG=1 for the traceback)", style="dim")
        raise typer.Exit(FAILURE) from None


def type_name(annotation: Any) -> str:
    """A short readable name of a field annotation (``int | None``, ``list[str]``, ``'a' | 'b'``)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if isinstance(annotation, type) and annotation.__name__ == "PluginConfig":
        return "plugin config"
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def default_repr(field: Any) -> str:
    """A field's default as shown to people: the value, ``{kind: ...}`` for plugin configs, or ``(required)``."""
    from pydantic_core import PydanticUndefined

    if field.default is not PydanticUndefined:
        return repr(field.default)
    if field.default_factory is None:
        return "(required)"
    try:
        value = field.default_factory()
    except TypeError:
        return "{...}"
    if isinstance(value, BaseModel):
        return f"{{kind: {value.kind}}}" if hasattr(value, "kind") else "{...}"
    return repr(value)


def field_rows(model: type[BaseModel], prefix: str = "", depth: int = 3) -> list[tuple[str, str, str, str]]:
    """``(path, type, default, description)`` of every field, descending into sub-models (not into plugin
    configs, whose fields depend on their kind: see ``hercules components list``)."""
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        default = default_repr(field)
        rows.append((path, type_name(field.annotation), default, field.description or ""))
        subs = [m for m in _sub_models(field.annotation) if m.__name__ != "PluginConfig"]
        if depth > 0 and len(subs) == 1:
            rows.extend(field_rows(subs[0], f"{path}.", depth - 1))
    return rows


def _sub_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        args = typing.get_args(annotation)[:1] if origin is typing.Annotated else typing.get_args(annotation)
        return [m for a in args for m in _sub_models(a)]
    return []


def sections_help(model: type[BaseModel]) -> str:
    """Epilog text: each top-level section and its description."""
    lines = [f"{name}: {field.description or ''}" for name, field in model.model_fields.items()]
    return "Recipe sections (see `hercules recipe fields`):\n\n" + "\n\n".join(lines)
