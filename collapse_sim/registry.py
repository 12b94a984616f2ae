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

A package outside collapse_sim adds kinds through an entry point of the family's group
(``collapse_sim.models``, ``collapse_sim.policies``, ``collapse_sim.samplers``,
``collapse_sim.systems``, ``collapse_sim.oracles``) whose value names a module (or
``module:attr``); importing that module registers its kinds as above. A registry imports its
group's entry points once, the first time its kinds are listed or one is looked up, so
``import collapse_sim`` imports no plugin.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import threading
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

_log = logging.getLogger(__name__)
_LOADING = threading.RLock()  # one plugin import at a time; a plugin may look kinds up while it registers
_PLURAL = {"policy": "policies"}


def entry_point_group(family: str) -> str:
    """The entry-point group whose plugins add kinds to ``family``: ``collapse_sim.<families>``."""
    return "collapse_sim." + _PLURAL.get(family, family + "s")


def _describe(entry_point: importlib.metadata.EntryPoint) -> str:
    """'plugin <distribution> <version> (entry point <name> = <value> in <group>)'."""
    dist = entry_point.dist
    source = f"{dist.name} {dist.version}" if dist is not None else "of an unknown distribution"
    return f"plugin {source} (entry point {entry_point.name} = {entry_point.value} in {entry_point.group})"


class Registry:
    """The kinds of one family; every settings class derives from ``base`` (the family's
    shared fields and capabilities)."""

    def __init__(self, family: str, base: type[BaseModel], group: str | None = None):
        self.family, self.base = family, base
        self.group = group or entry_point_group(family)
        self._kinds: dict[str, tuple[type[BaseModel], Any]] = {}
        self._plugins_loaded = False
        #: entry point -> why it was not loaded (one line), for the plugins that failed
        self.plugin_errors: dict[str, str] = {}

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

    def load_plugins(self) -> None:
        """Import the modules named by the entry points of ``group``, once per process (later
        calls do nothing); each import registers its kinds. Entry points are taken in the
        order of their names and distributions, so two plugins that claim one kind resolve
        alike everywhere.

        A plugin that fails, by raising on import or by claiming a kind already registered, is
        a warning, not an error: it is logged as one line naming the entry point, its
        distribution and the cause, kept in ``plugin_errors``, and whatever it had registered
        is removed again, so the registry holds all of a plugin or none of it. An environment
        holds packages a scenario never uses, and one broken package must not stop every run;
        a scenario that names a kind of the failed plugin is still refused at validation (an
        unknown kind), right after that line."""
        with _LOADING:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            found = importlib.metadata.entry_points(group=self.group)
            for entry_point in sorted(found, key=lambda e: (e.name, e.dist.name if e.dist else "")):
                before = dict(self._kinds)
                try:
                    entry_point.load()
                except Exception as error:  # a plugin's failure is reported, not raised
                    self._kinds = before
                    cause = str(error).splitlines()[0] if str(error) else ""
                    message = f"{type(error).__name__}: {cause}" if cause else type(error).__name__
                    self.plugin_errors[entry_point.name] = message
                    _log.warning("collapse_sim: %s not loaded: %s", _describe(entry_point), message)

    @property
    def kinds(self) -> list[str]:
        self.load_plugins()
        return list(self._kinds)

    def settings(self, kind: str) -> type[BaseModel] | None:
        """The settings class of ``kind``; None if no such kind is registered."""
        self.load_plugins()
        entry = self._kinds.get(kind)
        return entry[0] if entry else None

    def implementation(self, kind: str) -> Any:
        self.load_plugins()
        if kind not in self._kinds:
            failed = "".join(f"; plugin {name} not loaded: {why}" for name, why in self.plugin_errors.items())
            raise KeyError(f"unknown {self.family} kind {kind!r} (known: {', '.join(self._kinds)}{failed})")
        implementation = self._kinds[kind][1]
        if isinstance(implementation, str):
            module, _, attr = implementation.partition(":")
            implementation = getattr(importlib.import_module(module), attr)
        return implementation

    def make(self, settings: BaseModel, *args: Any, **kwargs: Any) -> Any:
        """The implementation of ``settings.kind``, built as ``Implementation(settings, *args, **kwargs)``."""
        return self.implementation(settings.kind)(settings, *args, **kwargs)
