"""Same seed, same numbers: the tiny twins in tests/golden/ (five policies; two labs sharing a
commons) give the committed rows. A change to how the loop is organised must not change what a
seed computes; a change that does is a new ``PROCEDURE`` with a CHANGELOG note, and the golden
rows are regenerated with ``python tests/golden/make_golden.py``."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

import make_golden  # noqa: E402

pytestmark = pytest.mark.integration


def _differences(expected: list[dict], found: list[dict]) -> list[str]:
    out = [f"{len(found)} rows, expected {len(expected)}"] if len(found) != len(expected) else []
    for want, got in zip(expected, found):
        where = f"{want['lineage']} generation {want['generation']}"
        for key in sorted(set(want) | set(got)):
            a, b = want.get(key), got.get(key)
            same = (math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) if isinstance(a, float) and isinstance(b, float)
                    else a == b)
            if not same:
                out.append(f"{where}: {key} = {b!r}, expected {a!r}")
    return out


@pytest.mark.parametrize("key", ["lineages", "labs"])
def test_a_seed_reproduces_the_committed_rows(key, tmp_path):
    expected = json.loads((GOLDEN / f"{key}.json").read_text())
    found = json.loads(json.dumps(make_golden.run_rows(make_golden.scenarios()[key], tmp_path)))
    problems = _differences(expected, found)
    assert not problems, "\n".join(problems[:20])
