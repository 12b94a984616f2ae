"""docs/scenario-reference.md: every scenario field, from the pydantic settings and the kind
registries (a newly registered kind appears when the page is regenerated)."""
from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Iterator

from doc_tables import GENERATED_NOTE, markdown_table, slug
from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def _by_kind(annotation) -> object | None:
    """The ``settings_base._ByKind`` marker of a family's settings type, if ``annotation`` is one."""
    if typing.get_origin(annotation) is typing.Annotated:
        return next((m for m in typing.get_args(annotation)[1:] if hasattr(m, "registry")), None)
    return None


def annotation_of(field) -> object:
    """A field's type with its metadata (pydantic moves a top-level ``Annotated``'s extras there)."""
    return typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def _targets(annotation) -> Iterator[object]:
    """The nested settings an annotation refers to: model classes and family markers."""
    if (marker := _by_kind(annotation)) is not None:
        yield marker
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    else:
        for arg in typing.get_args(annotation):
            yield from _targets(arg)


def _key(target) -> object:
    return target.registry if hasattr(target, "registry") else target


def _prose(doc: str | None) -> str:
    """A docstring as Markdown paragraphs (reST ``code`` as `code`)."""
    if not doc:
        return ""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(re.sub(r"``(.+?)``", r"`\1`", " ".join(p.split())) for p in paragraphs)


def _own_doc(cls: type) -> str | None:
    return cls.__dict__.get("__doc__")


def builtin_kinds(registry) -> list[str]:
    """The kinds collapse_sim itself defines: the page documents the package, not the plugins (or
    test kinds) that happen to be installed where it is generated."""
    return [k for k in registry.kinds if registry.settings(k).__module__.startswith("collapse_sim.")]


class Reference:
    """The settings tree below ``Scenario``: one section per nested settings class or family,
    at the first field that uses it (later uses link to it)."""

    def __init__(self):
        # importing the scenario imports every family package, and each registers its built-in kinds
        from collapse_sim.scenario import Scenario

        self.sections: list[tuple[str, object]] = []  # (title, class or family marker), in page order
        self.titles: dict[object, str] = {}  # class or registry -> its section title
        self.uses: dict[object, list[str]] = {}  # class or registry -> field paths that use it
        self.scenario = Scenario
        self._walk(Scenario, "")

    def _walk(self, cls: type, path: str) -> None:
        for name, field in cls.model_fields.items():
            where = f"{path}.{name}" if path else name
            if where in NOTES and not any(_targets(annotation_of(field))):
                self.sections.append((where, None))  # a section of notes only
            for target in _targets(annotation_of(field)):
                key = _key(target)
                self.uses.setdefault(key, []).append(where)
                if key in self.titles:
                    continue
                self.titles[key] = where
                self.sections.append((where, target))
                for nested in self.classes(target):
                    self._walk(nested, where)

    def classes(self, target) -> list[type]:
        """The settings classes of a section: the class, or every built-in kind of a family."""
        if hasattr(target, "registry"):
            return [target.registry.settings(kind) for kind in builtin_kinds(target.registry)]
        return [target] if target is not None else []

    def every_class(self) -> list[type]:
        return [self.scenario] + [cls for _, target in self.sections for cls in self.classes(target)]

    def missing_descriptions(self) -> list[str]:
        """'Class.field' of every settings field without a description (a kind's ``kind`` literal
        is described by its section)."""
        return [f"{cls.__module__}.{cls.__name__}.{name}" for cls in self.every_class()
                for name, field in cls.model_fields.items() if not field.description and name != "kind"]

    # -- rendering

    def link(self, target) -> str:
        title = self.titles[_key(target)]
        if hasattr(target, "registry"):
            text = f"{target.registry.family} settings"
        else:
            text = re.sub(r"(?<!^)(?=[A-Z])", " ", target.__name__.removesuffix("Settings")).lower()
        return f"[{text}](#{slug(title)})"

    def type_text(self, annotation) -> str:
        if _by_kind(annotation) is not None or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return self.link(_by_kind(annotation) or annotation)
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if annotation is type(None):
            return "null"
        if annotation is typing.Any:
            return "any"
        if origin is typing.Annotated:
            return self.type_text(args[0]) + _constraints(args[1:])
        if origin is typing.Literal:
            return " or ".join(f"`{v}`" for v in args)
        if origin in (typing.Union, types.UnionType):
            return " or ".join(self.type_text(a) for a in args)
        if origin is list:
            return f"list of {self.type_text(args[0])}"
        if origin is tuple:
            return "[" + ", ".join(self.type_text(a) for a in args) + "]"
        if origin is dict:
            return f"mapping of {self.type_text(args[0])} to {self.type_text(args[1])}" if args else "mapping"
        return getattr(annotation, "__name__", str(annotation))

    def default_text(self, field, annotation) -> str:
        if field.default_factory is not None:
            value = field.default_factory()
        elif field.default is PydanticUndefined:
            return "required"
        else:
            value = field.default
        if isinstance(value, BaseModel):
            return "every default"
        if isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            return f"{len(value)} with every default"
        if value == {} and (marker := _by_kind(annotation)) is not None and marker.default:
            return f"kind `{marker.default}`, every default"
        return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value, ensure_ascii=False)}`"

    def table(self, cls: type, kind: str | None = None) -> str:
        rows = []
        for name, field in cls.model_fields.items():
            if name == "kind" and kind is not None:
                default = "required" if field.default is PydanticUndefined else f"`{kind}`"
                rows.append(["`kind`", f"`{kind}`", default, "selects this kind"])
                continue
            annotation = annotation_of(field)
            description = re.sub(r"\bNone\b", "null", field.description or "")
            rows.append([f"`{name}`", self.type_text(annotation), self.default_text(field, annotation), description])
        return markdown_table(["field", "type", "default", "description"], rows)

    def section(self, title: str, target) -> str:
        level = "#" * (2 + title.count("."))
        uses = self.uses[_key(target)] if target is not None else [title]
        description = self._field(uses[0]).description
        doc = _prose(_own_doc(target)) if isinstance(target, type) else ""
        parts = [f"{level} {title}", doc or description[:1].upper() + description[1:] + "."]
        if len(uses) > 1:
            parts.append("Also used by " + ", ".join(f"`{u}`" for u in uses[1:]) + ".")
        if hasattr(target, "registry"):
            registry, default = target.registry, target.default
            kinds = ", ".join(f"[`{k}`](#{slug(f'{title}: {k}')})" for k in builtin_kinds(registry))
            parts.append(f"`kind` selects one of {kinds}; "
                         + (f"without `kind` the mapping is `{default}`." if default else "`kind` is required."))
            for kind in builtin_kinds(registry):
                cls = registry.settings(kind)
                parts += [f"{level}# {title}: {kind}", _prose(_own_doc(cls)), self.table(cls, kind)]
        elif target is not None:
            parts.append(self.table(target))
        if title in NOTES:
            parts.append(NOTES[title]())
        return "\n\n".join(p.strip("\n") for p in parts if p) + "\n"

    def _field(self, path: str):
        cls, field = self.scenario, None
        for name in path.split("."):
            field = cls.model_fields[name]
            nested = list(_targets(annotation_of(field)))
            cls = self.classes(nested[0])[0] if nested else None
        return field

    def page(self) -> str:
        top = ["# Scenario reference", GENERATED_NOTE.strip(), INTRO_REFERENCE.strip(),
               "## Top-level keys", self.table(self.scenario).strip()]
        return "\n\n".join(top) + "\n\n" + "\n".join(self.section(t, target) for t, target in self.sections)


def _constraints(metadata) -> str:
    """Bounds as ' ≥ 0, < 1', then ', non-empty' or ', matching `regex`'."""
    bounds, other = [], []
    for m in metadata:
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            if getattr(m, attr, None) is not None:
                bounds.append(f"{sign} {getattr(m, attr)}")
        if getattr(m, "min_length", None):
            other.append("non-empty" if m.min_length == 1 else f"at least {m.min_length} items")
        if getattr(m, "pattern", None):
            other.append(f"matching `{m.pattern}`")
    return (" " + ", ".join(bounds) if bounds else "") + "".join(f", {o}" for o in other)


INTRO_REFERENCE = """
A scenario is one YAML file: every knob of a collapse study. Unknown keys are errors, and every
problem is reported as one line naming the field, before anything is written to disk.
`collapse-sim validate FILE` checks a scenario and prints it with every default filled in.
The [shipped scenarios](scenarios.md) are complete examples; `scenarios/quickstart.yaml` is the
shortest.

The tables below list every field: its type (with its allowed range), its default ("required":
no default) and what it does. Sections whose settings depend on a `kind` (systems, oracles,
models, samplers, policies) have one table per kind; a kind added to the package appears here
when the page is regenerated.
"""


def _sweep_note() -> str:
    from collapse_sim.sweep import SWEEPABLE
    return ("`sweep` maps a dotted field path to the list of values to try, e.g. "
            "`policies.fresh-real.real_fraction: [0.05, 0.1, 0.25]` (a policy by its name or index, other lists by "
            "index). Every combination of the axes is a variant of the scenario; every (variant, policy, seed) is a "
            "lineage. Only fields under " + ", ".join(f"`{s}`" for s in SWEEPABLE) + " can be swept: every lineage "
            "is measured against the same probes, reference model, oracle, system and metrics. A scenario with "
            "`labs` has no sweep axes. See [sweeps](sweeps.md).")


def _metrics_note() -> str:
    return "The columns these settings shape are described in [metrics](metrics.md)."


NOTES = {"sweep": _sweep_note, "metrics": _metrics_note}


def scenario_reference() -> str:
    return Reference().page()
