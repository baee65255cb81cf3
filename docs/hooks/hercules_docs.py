"""MkDocs hook: pages get tables generated from the code, so that they cannot drift from it.

Markers (HTML comments, each alone on its line) are replaced while the site is built:

- ``<!-- hercules:components FAMILY -->``: every plugin of a registry with its config fields
  (FAMILY: ``model``, ``rule``, ``gate``, ``injection``).
- ``<!-- hercules:config package.module:Class -->``: the fields of a pydantic model, nested models flattened
  to dotted names (``training.lr``).
- ``<!-- hercules:cli -->``: every command of the ``hercules`` CLI with its usage, help and options.

An import error fails the build: a marker is only written once its module is on ``main``.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"^<!-- hercules:(?P<what>[\w-]+)(?: (?P<arg>[^>]*?))? -->$", re.M)
REGISTRIES = {
    "model": ("hercules.memory.models", "MEMORY_MODELS"),
    "rule": ("hercules.memory.rules", "UPDATE_RULES"),
    "gate": ("hercules.memory.gates", "GATES"),
    "injection": ("hercules.injection", "INJECTIONS"),
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _registry_of(field) -> object | None:
    """The Registry behind a plugin-config field (``Registry.field_type()`` validates through ``parse``)."""
    for meta in field.metadata:
        func = getattr(meta, "func", None)
        owner = getattr(func, "__self__", None)
        if owner is not None and hasattr(owner, "names") and hasattr(owner, "family"):
            return owner
    return None


def type_name(annotation: object) -> str:
    """A short, readable rendering of a type annotation."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a!r}`".replace("'", '"') for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def default_text(field) -> str:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            kind = getattr(value, "kind", None)
            return f"`{{kind: {kind}}}`" if kind else "(defaults below)"
        return f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{field.default!r}`"


def _models_in(annotation: object) -> list[type]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models_in(a)]


def field_rows(model: type, prefix: str = "", seen: frozenset = frozenset()) -> list[str]:
    """Table rows ``| name | type | default | description |`` for ``model``, nested models flattened."""
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        registry = _registry_of(field)
        if registry is not None:
            kinds = ", ".join(f"`{n}`" for n in registry.names())
            typ = f"{registry.family} config (`kind`: {kinds})"
        else:
            typ = type_name(field.annotation)
        rows.append(f"| `{path}` | {typ} | {default_text(field)} | {_cell(field.description or '')} |")
        for nested in _models_in(field.annotation):
            if nested not in seen and registry is None:
                rows += field_rows(nested, f"{path}.", seen | {model})
    return rows


def config_table(model: type) -> str:
    header = "| field | type | default | description |\n| --- | --- | --- | --- |"
    return "\n".join([header, *field_rows(model)])


def components(family: str) -> str:
    module, attr = REGISTRIES[family]
    registry = getattr(importlib.import_module(module), attr)
    parts = []
    for name in registry.names():
        config = registry.config(name)
        component = registry.get(name)
        doc = (config.__doc__ or "").strip().splitlines()[0] if config.__doc__ else ""
        parts.append(
            f"### `{name}`\n\n{doc} Implemented by `{component.__module__}.{component.__name__}`, configured by "
            f"`{config.__module__}.{config.__name__}`.\n\n{config_table(config)}\n"
        )
    return "\n".join(parts)


def config_fields(target: str) -> str:
    module, _, name = target.partition(":")
    return config_table(getattr(importlib.import_module(module), name))


def cli_reference() -> str:
    import click
    import typer

    from hercules.cli.main import app

    root = typer.main.get_command(app)
    parts = []

    def walk(command: click.Command, path: list[str]) -> None:
        ctx = click.Context(command, info_name=" ".join(path))
        if path[1:]:
            parts.append(f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`\n")
            parts.append(f"{(command.help or '').strip()}\n")
            parts.append(f"```text\n{command.get_usage(ctx)}\n```\n")
            rows = []
            for param in command.get_params(ctx):
                if param.name == "help":
                    continue
                names = ", ".join(f"`{o}`" for o in (param.opts if isinstance(param, click.Option) else
                                                     [param.human_readable_name]))
                help_text = getattr(param, "help", None) or ""
                default = "" if param.default in (None, ()) or param.required else f"`{param.default!r}`"
                rows.append(f"| {names} | {_cell(help_text)} | {default} |")
            if rows:
                parts.append("| argument / option | description | default |\n| --- | --- | --- |")
                parts.append("\n".join(rows) + "\n")
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name])

    walk(root, ["hercules"])
    return "\n".join(parts)


def _render(match: re.Match) -> str:
    what, arg = match["what"], (match["arg"] or "").strip()
    if what == "components":
        return components(arg)
    if what == "config":
        return config_fields(arg)
    if what == "cli":
        return cli_reference()
    raise ValueError(f"unknown docs marker hercules:{what}; valid: components, config, cli")


def on_page_markdown(markdown: str, page, config, files) -> str:
    return MARKER.sub(_render, markdown)
