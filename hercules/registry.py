"""Plugin registries: components register themselves by decorator when their module is imported.

Every pluggable family (memory models, update rules, retrieval gates, injection strategies) has one
:class:`Registry`. A plugin is a class registered under a ``kind`` name together with its pydantic config class,
whose ``kind`` field is a ``Literal`` of that name, so that configs of one family form a discriminated union.

The built-ins keep their configs in torch-free modules that :meth:`Registry.declare` them with the module that
implements them; that module is imported on the first :meth:`Registry.get`. Validating a recipe (and starting the
CLI) therefore imports neither torch nor transformers.

Examples:
    >>> from hercules.registry import Registry
    >>> shapes = Registry("shape")
    >>> @shapes.register("square")
    ... class Square:
    ...     pass
    >>> shapes.get("square") is Square
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, ValidationError

T = TypeVar("T")


class PluginConfig(BaseModel):
    """Base class of every plugin config: unknown fields are errors, ``kind`` names the plugin."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
    kind: str


class RegistryError(KeyError):
    """Raised for an unknown or duplicate name; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly instead.
        return str(self.args[0])


class Registry(Generic[T]):
    """A name → component table for one family of plugins.

    Args:
        family: what the registry holds, used in error messages (``"memory model"``).
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}
        self._configs: dict[str, type] = {}
        self._modules: dict[str, str] = {}

    def declare(self, name: str, config: type, module: str) -> None:
        """Announce a component whose config is ``config`` and whose class ``module`` registers when imported.

        The config validates at once; the module (with its torch code) is imported by :meth:`get`.
        """
        if name in self._entries or name in self._modules:
            raise RegistryError(f"{self.family} {name!r} is already registered; pick another name")
        self._configs[name] = config
        self._modules[name] = module

    def register(self, name: str, config: type | None = None) -> Callable[[T], T]:
        """Decorator that registers a component under ``name`` (with its config class, if any)."""

        def decorator(component: T) -> T:
            declared = self._modules.get(name)
            if name in self._entries or declared not in (None, getattr(component, "__module__", None)):
                raise RegistryError(
                    f"{self.family} {name!r} is already registered ({self._entries.get(name, declared)!r}); "
                    f"pick another name or unregister it first"
                )
            self._entries[name] = component
            if config is not None:
                self._configs[name] = config
            return component

        return decorator

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and for replacing a built-in)."""
        self._check(name)
        self._entries.pop(name, None)
        self._modules.pop(name, None)
        self._configs.pop(name, None)

    def _check(self, name: str) -> str:
        if name not in self._entries and name not in self._modules:
            raise RegistryError(
                f"unknown {self.family} {name!r}; valid choices: {', '.join(self.names()) or '(none)'}"
            )
        return name

    def get(self, name: str) -> T:
        """The component registered under ``name``; an unknown name lists the valid ones."""
        if name not in self._entries and name in self._modules:
            importlib.import_module(self._modules[name])  # registers it
        return self._entries[self._check(name)]

    def config(self, name: str) -> type:
        """The pydantic config class of ``name``."""
        self._check(name)
        if name not in self._configs:
            raise RegistryError(f"{self.family} {name!r} was registered without a config class")
        return self._configs[name]

    def configs(self) -> dict[str, type]:
        """All registered config classes by name (for discriminated unions and ``components list``)."""
        return dict(self._configs)

    def parse(self, value: Any) -> PluginConfig:
        """Validate ``value`` (a config, a ``{"kind": ...}`` mapping or a bare kind name) into its config class.

        The error names the bad field and, for an unknown kind, the valid choices.
        """
        if isinstance(value, str):
            value = {"kind": value}
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if not isinstance(value, dict) or "kind" not in value:
            raise ValueError(
                f"a {self.family} config needs a 'kind'; valid choices: {', '.join(self.names())}"
            )
        kind = value["kind"]
        if not isinstance(kind, str) or kind not in self._configs:
            shown = repr(kind) if len(repr(kind)) <= 60 else f"{repr(kind)[:57]}..."
            raise ValueError(f"unknown {self.family} kind {shown}; valid choices: {', '.join(self.names())}")
        try:
            return self._configs[kind].model_validate(value)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" + (f" (got {repr(e['input'])[:60]})" if "input" in e else "")
                for e in err.errors()
            )
            raise ValueError(f"{self.family} {kind!r}: {problems}") from None

    def field_type(self) -> Any:
        """A type for pydantic fields that hold a config of this family (validated through :meth:`parse`)."""
        return Annotated[
            PluginConfig,
            BeforeValidator(self.parse),
            PlainSerializer(lambda c: c.model_dump(), return_type=dict),
        ]

    def names(self) -> list[str]:
        return sorted(self._entries.keys() | self._modules.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.names()})"


def build(registry: Registry[Any], config: Any, *args: Any, **kwargs: Any) -> Any:
    """Instantiate the component that ``config.kind`` names: ``registry.get(config.kind)(config, *args, **kwargs)``."""
    return registry.get(config.kind)(config, *args, **kwargs)
