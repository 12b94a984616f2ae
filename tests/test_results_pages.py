"""The results pages show what their committed data gives: every table is regenerated from
docs/results/STUDY/data and compared with the committed table and page; a claim's wording
follows its interval and its number of seeds."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "results" / "scripts"))
sys.path.insert(0, str(ROOT / "docs" / "scripts"))

import build_results  # noqa: E402

from collapse_sim.report.statistics import paired  # noqa: E402


def test_every_table_and_page_matches_its_committed_data():
    stale = build_results.stale_files()
    assert not stale, ("differ from their committed data: " + ", ".join(str(p.relative_to(ROOT)) for p in stale)
                       + "; run python docs/results/scripts/build_results.py")


@pytest.mark.parametrize("study", sorted(build_results.STUDIES))
def test_a_generated_page_shows_every_table_of_its_study(study):
    text = (ROOT / "docs" / "results" / f"{study}.md").read_text()
    shown = set(re.findall(rf"<!-- table: results/{study}/tables/(\S+)\.csv -->", text))
    assert shown == {t.name for t in build_results.STUDIES[study].tables}


@pytest.mark.parametrize("a, b, expected", [
    ({s: 1.0 + 0.01 * s for s in range(5)}, {s: 2.0 for s in range(5)}, "separated: lower (better)"),
    ({s: 3.0 + 0.01 * s for s in range(5)}, {s: 2.0 for s in range(5)}, "separated: higher (worse)"),
    ({s: (-1) ** s for s in range(5)}, {s: 0.0 for s in range(5)}, "not separated"),
    ({s: 1.0 + 0.01 * s for s in range(4)}, {s: 2.0 for s in range(4)}, "preliminary (4 seeds)"),
])
def test_wording_follows_the_interval_and_the_seeds(a, b, expected):
    assert build_results.verdict(paired(a, b), higher_is_worse=True) == expected
