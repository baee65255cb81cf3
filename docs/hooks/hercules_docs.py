"""MkDocs hook: pages get tables generated from the code, so that they cannot drift from it.

Markers (HTML comments, each alone on its line) are replaced while the site is built:

- ``<!-- hercules:components FAMILY -->``: every plugin of a registry with its config fields
  (FAMILY: ``model``, ``rule``, ``gate``, ``injection``).
- ``<!-- hercules:config package.module:Class -->``: the fields of a pydantic model, nested models flattened
  to dotted names (``training.lr``); ``hercules:config-sections`` gives each nested section its own table.
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
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _is_registry(obj: object) -> bool:
    return hasattr(obj, "names") and hasattr(obj, "family") and hasattr(obj, "field_type")


def _registry_of(field) -> object | None:
    """The Registry behind a plugin-config field (``Registry.field_type()`` validates through ``parse``),
    also when the field is optional (the validator then sits inside the union)."""
    metadata = list(field.metadata)
    pending = [field.annotation]
    while pending:
        annotation = pending.pop()
        if typing.get_origin(annotation) is typing.Annotated:
            metadata += list(annotation.__metadata__)
        pending += list(typing.get_args(annotation))
    for meta in metadata:
        owner = getattr(getattr(meta, "func", None), "__self__", None)
        if owner is not None and _is_registry(owner):
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


def _value(value: object) -> str:
    from pathlib import PurePath

    return f"`{value}`" if isinstance(value, PurePath) else f"`{value!r}`"


def default_text(field) -> str:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            kind = getattr(value, "kind", None)
            return f"`{{kind: {kind}}}`" if kind else "(its defaults)"
        return _value(value)
    if field.default is PydanticUndefined:
        return "**required**"
    return _value(field.default)


def _models_in(annotation: object) -> list[type]:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models_in(a)]


def _kind_of(model: type) -> str | None:
    field = model.model_fields.get("kind")
    return None if field is None else field.default


def _container_suffix(annotation: object) -> str:
    """``.<key>`` for a dict of models, ``[]`` for a list of models, nothing otherwise."""
    for arg in (annotation, *typing.get_args(annotation)):
        origin = typing.get_origin(arg)
        if origin is dict:
            return ".<key>"
        if origin is list and _models_in(arg):
            return "[]"
    return ""


def field_rows(model: type, prefix: str = "", note: str = "", expanded: dict | None = None) -> list[str]:
    """Table rows ``| name | type | default | description |`` for ``model``, nested models flattened.

    A field holding one of several models (a union discriminated by ``kind``) lists each variant's fields, each
    description starting with the variant's ``kind``. A model met a second time refers to its first listing.
    """
    expanded = {} if expanded is None else expanded
    rows = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        registry = _registry_of(field)
        if registry is not None:
            kinds = ", ".join(f"`{n}`" for n in registry.names())
            typ = f"{registry.family} config (`kind`: {kinds})"
        else:
            typ = type_name(field.annotation)
        nested = _models_in(field.annotation) if registry is None else []
        description = note + _cell(field.description or "")
        seen_before = [expanded[m] for m in nested if m in expanded]
        if seen_before:
            description += f" (fields as under `{seen_before[0]}`)"
        rows.append(f"| `{path}` | {typ} | {default_text(field)} | {description} |")
        inner = f"{path}{_container_suffix(field.annotation)}"
        for variant in [m for m in nested if m not in expanded]:
            expanded[variant] = inner
        for variant in [m for m in nested if expanded[m] == inner]:
            kind = _kind_of(variant) if len(nested) > 1 else None
            sub_note = f"{note}(`kind: {kind}`) " if kind else note
            rows += field_rows(variant, f"{inner}.", sub_note, expanded)
    return rows


HEADER = "| field | type | default | description |\n| --- | --- | --- | --- |"


def config_table(model: type) -> str:
    return "\n".join([HEADER, *field_rows(model)])


def sectioned_table(model: type) -> str:
    """Top-level plain fields in one table, then one heading and table per nested section."""
    plain, sections = [], []
    for name, field in model.model_fields.items():
        if _models_in(field.annotation) and _registry_of(field) is None:
            sub = type("Section", (), {"model_fields": {name: field}})
            sections.append(f"### `{name}`\n\n{_cell(field.description or '')}\n\n{HEADER}\n"
                            + "\n".join(field_rows(sub)) + "\n")
        else:
            plain.append(field_rows(type("One", (), {"model_fields": {name: field}}))[0])
    return "\n".join([HEADER, *plain, "", *sections])


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


def config_fields(target: str, sectioned: bool = False) -> str:
    module, _, name = target.partition(":")
    model = getattr(importlib.import_module(module), name)
    return sectioned_table(model) if sectioned else config_table(model)


def _param_row(param) -> str:
    is_option = getattr(param, "param_type_name", "") == "option"
    names = ", ".join(f"`{o}`" for o in (param.opts + param.secondary_opts if is_option else
                                         [param.name.upper()]))
    default = param.default
    shown = "" if param.required or default in (None, (), []) else f"`{default}`"
    return f"| {names} | {_cell(getattr(param, 'help', None) or '')} | {shown} |"


def _argument_usage(param) -> str:
    text = param.name.upper() + ("..." if param.nargs == -1 else "")
    return text if param.required else f"[{text}]"


def cli_reference() -> str:
    """Usage, help and parameters of every ``hercules`` command (Typer's click objects, walked)."""
    import typer

    from hercules.cli.main import app

    parts: list[str] = []

    def walk(command, path: list[str], parent=None) -> None:
        ctx = command.context_class(command, info_name=path[-1], parent=parent)
        if len(path) > 1:
            parts.append(f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`\n")
            parts.append(f"{(command.help or '').strip()}\n")
            usage = " ".join(["[OPTIONS]", *(_argument_usage(p) for p in command.get_params(ctx)
                                              if getattr(p, "param_type_name", "") == "argument")])
            if hasattr(command, "list_commands"):
                usage += " COMMAND [ARGS]..."
            parts.append(f"```text\n{' '.join(path)} {usage}\n```\n")
            rows = [_param_row(p) for p in command.get_params(ctx) if p.name != "help"]
            if rows:
                parts.append("| argument / option | description | default |\n| --- | --- | --- |")
                parts.append("\n".join(rows) + "\n")
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name], ctx)

    walk(typer.main.get_command(app), ["hercules"])
    return "\n".join(parts)


def _render(match: re.Match) -> str:
    what, arg = match["what"], (match["arg"] or "").strip()
    if what == "components":
        return components(arg)
    if what == "config":
        return config_fields(arg)
    if what == "config-sections":
        return config_fields(arg, sectioned=True)
    if what == "cli":
        return cli_reference()
    raise ValueError(f"unknown docs marker hercules:{what}; valid: components, config, config-sections, cli")


def on_page_markdown(markdown: str, page, config, files) -> str:
    return MARKER.sub(_render, markdown)
