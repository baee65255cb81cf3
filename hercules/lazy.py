"""Lazy package exports, so that importing a light module (a config) does not import torch through its package.

A package's ``__init__`` lists its public names with the module that defines each and calls :func:`lazy_package`;
the module is imported when a name is first used (``from hercules.memory import NeuralMemory`` works as before).
An export named like a submodule of its package (``hercules.injection.augment``, the function, in the module of
the same name) stays the export after the submodule is imported.

Examples:
    >>> import types, sys
    >>> sys.modules["demo_pkg"] = types.ModuleType("demo_pkg")
    >>> lazy_package("demo_pkg", {"dumps": "json"})
    >>> sys.modules["demo_pkg"].dumps([1])
    '[1]'
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _LazyPackage(types.ModuleType):
    _exports: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        exports = self.__dict__.get("_exports", {})
        if name not in exports:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system binds a loaded submodule on its package; keep an export of the same name instead.
        exports = self.__dict__.get("_exports", {})
        if isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}" and name in exports:
            value = getattr(value, name, value) if exports[name] == value.__name__ else value
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__dict__.get("_exports", {})))


def lazy_package(package: str, exports: dict[str, str]) -> None:
    """Make ``package`` import each public name from its module (``exports``: name → module) at first use."""
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    module.__dict__["_exports"] = exports
