"""A metric that cannot be computed (too few points, all ties) is recorded as missing, with
a warning in the row, rather than ending a long run."""
from __future__ import annotations


def guarded(name: str, fn, warnings: list[str]) -> dict:
    """``fn()``, or an empty dict plus a warning when it raises ``ValueError``."""
    try:
        return fn()
    except ValueError as exc:
        warnings.append(f"{name}: {exc}")
        return {}
