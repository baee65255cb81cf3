"""Reading a recipe file defensively: size cap, UTF-8 only, bounded nesting and aliases, no duplicate keys.

A recipe may come from anywhere, so every way a file can be wrong ends in one :class:`RecipeError` line that names
the file (and the line where there is one) and says what to do, never in a traceback, a hang or a flood of output.

Examples:
    >>> parse_yaml("a: 1\\nb: [x, y]\\n", "r.yaml")
    {'a': 1, 'b': ['x', 'y']}
    >>> parse_yaml("a: 1\\na: 2\\n", "r.yaml")
    Traceback (most recent call last):
    ...
    hercules.recipes.yaml_input.RecipeError: r.yaml line 2, column 1: invalid YAML: duplicate key 'a' (first at line 1); keep one of them
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 256 * 1024  # the largest recipe in the repository is under 3 KB
MAX_DEPTH = 50  # nested mappings and lists; a recipe needs about 6
MAX_VALUES = 10_000  # scalars, lists and mappings after aliases are expanded (bounds YAML alias bombs)
MAX_SHOWN = 80  # characters of a bad value quoted in an error message


class RecipeError(ValueError):
    """A recipe that cannot be read or validated; the message has one line per problem, no traceback needed."""


def short_repr(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters (a bad value may be megabytes long)."""
    text = repr(value) if not isinstance(value, (list, dict)) or len(value) < 1000 else f"<{type(value).__name__} "\
        f"of {len(value)} items>"
    return text if len(text) <= limit else f"{text[: limit - 20]}…{text[-15:]} ({len(text)} characters)"


class _RecipeLoader(yaml.SafeLoader):
    """SafeLoader that bounds nesting depth and alias expansion and refuses duplicate mapping keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_VALUES:
            raise ComposerError(
                None, None, f"it holds more than {MAX_VALUES} values once its aliases are expanded (a recipe "
                "needs a few hundred); write the values out instead of nesting anchors", node.start_mark,
            )
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise ConstructorError(
                    None, None, f"duplicate key {short_repr(key)} (first at line {seen[key].line + 1}); keep one "
                    "of them", key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: Node, memo: dict[int, int]) -> int:
    """Number of nodes ``node`` stands for once every alias is replaced by a copy (memoised: linear time)."""
    if id(node) in memo:
        return memo[id(node)]
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = min(size, MAX_VALUES + 1)
    return memo[id(node)]


def parse_yaml(text: str, source: str) -> Any:
    """``text`` as YAML with the bounds above; any problem is a one-line :class:`RecipeError`."""
    try:
        return yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - _RecipeLoader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RecipeError(f"{source}{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise RecipeError(f"{source}: invalid YAML: nested too deeply (at most {MAX_DEPTH} levels)") from None


def read_text(path: Path) -> str:
    """The file's text: a regular file, at most :data:`MAX_BYTES`, in UTF-8."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file (see `hercules recipe list`)") from None
    except OSError as err:
        raise RecipeError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    if stat.S_ISDIR(info.st_mode):
        raise RecipeError(f"{path}: is a folder, not a recipe file; give a .yaml file (`hercules recipe list "
                          f"{path}` lists the recipes in it)")
    if not stat.S_ISREG(info.st_mode):
        raise RecipeError(f"{path}: is not a regular file (a pipe or device?); give a .yaml recipe file")
    if info.st_size > MAX_BYTES:
        raise RecipeError(f"{path}: {info.st_size} bytes is too large for a recipe (at most {MAX_BYTES}); is it "
                          "the right file?")
    try:
        data = path.read_bytes()[: MAX_BYTES + 1]
    except OSError as err:
        raise RecipeError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    return decode_utf8(data, str(path))


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` decoded as UTF-8 (a leading BOM allowed); otherwise an error naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise RecipeError(
            f"{source} line {line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); save the "
            "recipe as UTF-8"
        ) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The recipe file at ``path`` as a mapping (see the module docstring for what is refused)."""
    path = Path(path)
    data = parse_yaml(read_text(path), str(path))
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of sections, got {type(data).__name__}")
    return data
