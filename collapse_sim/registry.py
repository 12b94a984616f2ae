"""One registry per pluggable family (systems, oracles, models, samplers, policies):
``kind`` -> (settings class, implementation).

A kind module defines its settings class (``kind: Literal["linear"]``) beside its
implementation and registers both with one line::

    KINDS.register(LinearSettings, LinearModel)
    KINDS.register(MACESettings, "collapse_sim.models.mace.model:MACEModel")  # imported on first use

An implementation given as ``"module:attr"`` is imported only when it is first made, so a
kind that needs torch costs nothing to validate. The family's settings type
(``settings_base.kind_union``) looks kinds up at validation time: a kind registered at run
time (a plugin, a test) is valid in a scenario from then on.
"""
from __future__ import annotations

import importlib
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel


class Registry:
    """The kinds of one family; every settings class derives from ``base`` (the family's
    shared fields and capabilities)."""

    def __init__(self, family: str, base: type[BaseModel]):
        self.family, self.base = family, base
        self._kinds: dict[str, tuple[type[BaseModel], Any]] = {}

    def register(self, settings: type[BaseModel], implementation: Any) -> None:
        """Add the kind named by ``settings``' ``kind`` literal; ``implementation`` is the
        class (or ``"module:attr"`` of it) that ``make`` builds from such settings."""
        if not issubclass(settings, self.base):
            raise TypeError(f"{settings.__name__}: {self.family} settings must derive from {self.base.__name__}")
        literal = settings.model_fields["kind"].annotation
        if get_origin(literal) is not Literal or len(get_args(literal)) != 1:
            raise TypeError(f"{settings.__name__}: kind must be one name, kind: Literal['name']")
        kind = get_args(literal)[0]
        if kind in self._kinds:
            raise ValueError(f"{self.family} kind {kind!r} is already registered")
        self._kinds[kind] = (settings, implementation)

    def unregister(self, kind: str) -> None:
        del self._kinds[kind]

    @property
    def kinds(self) -> list[str]:
        return list(self._kinds)

    def settings(self, kind: str) -> type[BaseModel] | None:
        """The settings class of ``kind``; None if no such kind is registered."""
        entry = self._kinds.get(kind)
        return entry[0] if entry else None

    def implementation(self, kind: str) -> Any:
        if kind not in self._kinds:
            raise KeyError(f"unknown {self.family} kind {kind!r} (known: {', '.join(self._kinds)})")
        implementation = self._kinds[kind][1]
        if isinstance(implementation, str):
            module, _, attr = implementation.partition(":")
            implementation = getattr(importlib.import_module(module), attr)
        return implementation

    def make(self, settings: BaseModel, *args: Any, **kwargs: Any) -> Any:
        """The implementation of ``settings.kind``, built as ``Implementation(settings, *args, **kwargs)``."""
        return self.implementation(settings.kind)(settings, *args, **kwargs)
