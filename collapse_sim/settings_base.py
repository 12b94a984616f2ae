"""Base class for every settings block (unknown keys are errors), and tagged unions on ``kind``."""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def kind_union(default: str | None, *classes: type[BaseModel]) -> Any:
    """A union of settings classes discriminated by their ``kind`` literal; a mapping without
    ``kind`` is read as ``default`` (None: ``kind`` is required)."""

    def kind(value: Any) -> Any:
        if isinstance(value, dict):
            return value.get("kind", default)
        return getattr(value, "kind", None)

    tagged = tuple(Annotated[cls, Tag(cls.model_fields["kind"].annotation.__args__[0])] for cls in classes)
    return Annotated[Union[tagged], Discriminator(kind)]
