"""Base classes for settings blocks (unknown keys are errors), and a family's settings type."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticKnownError, core_schema

if TYPE_CHECKING:
    from collapse_sim.registry import Registry


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KindSettings(Strict):
    """Settings of one kind of a family; each kind narrows ``kind`` to its name, ``Literal["..."]``."""

    kind: str = Field(description="which kind of its family these settings are for")

    def check(self, scenario: Any) -> None:
        """What this kind needs from the rest of ``scenario``: ValueError, one line naming the
        field, if the scenario cannot use it. Most kinds need nothing."""


class _ByKind:
    """Validates a mapping with the settings class its ``kind`` names in a registry, looked up
    at validation time so that kinds registered later are found. Errors inside the class come
    back with their field path under this field (no union tag in between)."""

    def __init__(self, registry: Registry, default: str | None):
        self.registry, self.default = registry, default

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self.validate)

    def validate(self, value: Any) -> BaseModel:
        if isinstance(value, dict):
            kind = value.get("kind", self.default)
        elif isinstance(value, BaseModel):
            kind = getattr(value, "kind", None)
        else:
            raise PydanticKnownError("dict_type")
        if kind is None:
            raise PydanticKnownError("union_tag_not_found", {"discriminator": "'kind'"})
        settings = self.registry.settings(kind) if isinstance(kind, str) else None
        if settings is None:
            raise PydanticKnownError("union_tag_invalid", {"discriminator": "'kind'", "tag": str(kind),
                                                           "expected_tags": ", ".join(map(repr, self.registry.kinds))})
        return settings.model_validate(value)


def kind_union(registry: Registry, default: str | None = None) -> Any:
    """The settings type of a family: any kind in ``registry``, chosen by ``kind``; a mapping
    without ``kind`` is read as ``default`` (None: ``kind`` is required)."""
    return Annotated[registry.base, _ByKind(registry, default)]


def _location(loc: tuple) -> list[str]:
    """The error's path in the user's terms: without validator names."""
    return [str(part) for part in loc if not (isinstance(part, str) and part.startswith("function-"))]


def describe_error(error: ValidationError) -> str:
    """A pydantic error as the one line the user sees: where (dotted field path), what, and how many more."""
    first = error.errors()[0]
    where = ".".join(_location(first["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    extra = f" (and {error.error_count() - 1} more problem(s))" if error.error_count() > 1 else ""
    return f"{where}: {message}{extra}" if where else message + extra
