"""The report's layout: a short header, then the findings and collapse curves; the software and
machine records last, folded in a <details> element, each distinct machine shown once."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from collapse_sim.report import build_report
from collapse_sim.report.context import environments, seeds_text
from collapse_sim.store import RunStore


@pytest.mark.parametrize("seeds, text", [
    ([], "—"), ([0], "1 (0)"), ([0, 1], "2 (0, 1)"), ([4, 0, 1, 2, 3], "5 (0–4)"), ([0, 2, 5], "3 (0, 2, 5)"),
    ([0, 1, 2, 7, 9, 10, 11], "7 (0–2, 7, 9–11)"),
])
def test_seeds_are_a_count_with_the_list(seeds, text):
    assert seeds_text(seeds) == text


def test_a_machine_shared_by_run_and_report_is_shown_once():
    class Run:
        def __init__(self, label, env):
            self.label, self.recorded_env = label, env

    here = {"hostname": "a", "python": "3.11"}
    same = Run("one", {"environment.machine.hostname": "a", "environment.machine.python": "3.11",
                       "environment.executor": "ray embedded"})
    other = Run("two", {"environment.machine.hostname": "b", "environment.machine.python": "3.11"})
    env = environments([same], here)
    assert env["columns"] == ["run one and this report"] and env["run_records"]
    assert [(r["key"], r["values"], r["differs"]) for r in env["rows"]] == [("hostname", ["a"], False),
                                                                           ("python", ["3.11"], False)]
    assert env["records"] == [{"label": "one", "values": {"executor": "ray embedded"}}]
    env = environments([same, other], here)
    assert env["columns"] == ["run one and this report", "run two"]
    assert {r["key"]: r["differs"] for r in env["rows"]} == {"hostname": True, "python": False}
    env = environments([Run("bare", {})], here)
    assert env["columns"] == ["this report"] and env["records"] == [] and not env["run_records"]


@pytest.fixture(scope="module")
def recorded(tiny_run, tmp_path_factory):
    """A copy of the tiny run with the environment record that ``collapse-sim run`` writes, and
    its report: (html text, markdown text)."""
    _, run_dir, _ = tiny_run
    root = tmp_path_factory.mktemp("recorded")
    target = root / run_dir.name
    shutil.copytree(run_dir, target)
    store = RunStore(target)
    store.write_environment(executor="ray embedded")
    record = json.loads(store.environment_path.read_text())
    record["started"] = "2020-01-01T00:00:00+0000"  # before every status record: a positive wall time
    store.environment_path.write_text(json.dumps(record))
    result = build_report([target], root / "report.html", heatmaps=False)
    return result.html.read_text(), result.markdown.read_text()


def _order(text, needles):
    positions = [text.find(n) for n in needles]
    assert all(p >= 0 for p in positions), dict(zip(needles, positions))
    return positions


def test_findings_and_curves_come_first_environment_last(recorded):
    html, _ = recorded
    positions = _order(html, ['<section id="overview"', '<section id="findings"', "<th>rank</th>",
                              '<section id="collapse-curves"', 'id="fig-accuracy"', '<section id="onsets"',
                              'id="findings-table"', '<section id="statistics"', '<section id="information-imbalance"',
                              '<section id="run-details"', '<details id="environment"'])
    assert positions == sorted(positions)
    head = html[:html.find('<section id="findings"')]
    assert "<th>platform</th>" not in head and "<summary>Software" not in head and "collapse_sim</th>" not in head
    # the environment is folded away: every machine table lies inside the one <details>, the page's last part
    details = re.search(r'<details id="environment">.*?</details>', html, re.S).group(0)
    assert html.count("<th>platform</th>") == details.count("<th>platform</th>") == 1
    assert "<section" not in html[html.find('<details id="environment"'):]


def test_header_says_seeds_generations_and_wall_time(recorded):
    html, md = recorded
    overview = re.search(r'<section id="overview">.*?</section>', html, re.S).group(0)
    assert "<td>1 (0)</td>" in overview
    for column in ("scenario", "what was varied", "seeds", "generations", "wall time"):
        assert f"<th>{column}</th>" in overview
    assert "fresh-real (real_fraction=" in overview
    wall = re.findall(r'<td class="num">([^<]*)</td>', overview)[-1]
    assert wall != "—" and wall.endswith(("s", "min", "h"))
    assert "| 1 (0) |" in md


def test_one_machine_once_when_run_and_report_share_it(recorded):
    html, md = recorded
    assert "Same machine and software: run tiny and this report." in html
    assert "Machine that made this report" not in html and "Recorded by run" not in html
    assert "Also recorded by run tiny" in html and "<th>executor</th>" in html
    assert "Same machine and software: run tiny and this report." in md
    assert md.count("| platform |") == 1 and md.count("| python |") == 1


def test_markdown_follows_the_same_order(recorded):
    _, md = recorded
    positions = _order(md, ["| scenario |", "## Findings", "### Policy ranking", "## Statistics over seeds",
                            "## Figures", "## Run details", "### Software and machines"])
    assert positions == sorted(positions)
    assert "python:" not in md[:md.find("## Run details")]
