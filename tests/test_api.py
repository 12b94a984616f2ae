"""The Python API end to end: a tiny scenario run from Python, its rows as records and a DataFrame,
resume, load, write_report and compare; bad input raises one ``UsageError`` line and writes nothing."""
from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scenario_factory import quickstart_dict, tiny_scenario_dict

import collapse_sim
from collapse_sim import UsageError


def _scenario(**overrides) -> dict:
    """Two lineages, one model-fed generation, the linear model, metrics off: seconds, no MACE."""
    return tiny_scenario_dict(**{"name": "api", "model": {"kind": "linear"}, "generations": 1, "probes": None,
                                 "policies": [{"kind": "replace"}, {"kind": "accumulate"}],
                                 "metrics": {"enabled": False}, **overrides})


def _silicon() -> dict:
    """A valid scenario whose oracle (EMT) cannot label its system."""
    data = quickstart_dict()
    data["system"] |= {"element": "Si", "crystal": "diamond", "lattice_constant": 5.43}
    return data


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    """The scenario run once from Python, in this process. Tests must not modify it."""
    return collapse_sim.run(_scenario(), tmp_path_factory.mktemp("api"), local=True, progress=False)


def _files(root) -> dict:
    """Every file under ``root`` with its modification time."""
    return {p.relative_to(root): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _generations(root) -> dict:
    """The files of every committed generation, with their modification times."""
    return {p: t for p, t in _files(root).items() if p.parts[1:2] and p.parts[1].startswith("gen-")}


def test_a_run_gives_its_rows_as_records_and_a_dataframe(api_run):
    assert api_run.root.name == "api" and api_run.scenario.name == "api"
    assert api_run.lineages == ["replace-s0", "accumulate-s0"]
    assert [(r["lineage"], r["generation"]) for r in api_run.rows] == [
        ("replace-s0", 0), ("replace-s0", 1), ("accumulate-s0", 0), ("accumulate-s0", 1)]
    on_disk = [json.loads(line) for line in api_run.metrics_path.read_text().splitlines()]
    assert on_disk == api_run.rows
    assert "2 lineage(s), 4 metrics row(s)" in repr(api_run)
    loaded = collapse_sim.load(str(api_run.root))
    assert loaded.rows == api_run.rows and loaded.lineages == api_run.lineages


def test_rows_and_tables_as_dataframes(api_run):
    pytest.importorskip("pandas")
    frame = api_run.to_dataframe()
    assert frame.shape[0] == 4 and list(frame["n_train"]) == [r["n_train"] for r in api_run.rows]
    table = collapse_sim.compare(api_run, metrics=["linear_weight_norm"]).to_dataframe()
    assert list(table["policy"]) == ["replace", "accumulate"]


def test_to_dataframe_names_pandas_when_it_is_missing(api_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas"):
        api_run.to_dataframe()


def test_resuming_a_complete_run_recomputes_nothing(api_run):
    generations = _generations(api_run.root)
    assert len(generations) > 4
    resumed = collapse_sim.resume(api_run.root, local=True, progress=False)
    assert resumed.rows == api_run.rows and _generations(api_run.root) == generations


def test_report_and_compare_return_their_results(api_run, tmp_path):
    result = api_run.report(tmp_path / "report.html", heatmaps=False)
    assert result.html.is_file() and result.markdown == tmp_path / "report.md" and result.seconds > 0
    assert collapse_sim.write_report([api_run.root], tmp_path / "again.html", heatmaps=False).html.is_file()

    column = "linear_weight_norm"
    comparison = collapse_sim.compare(api_run, metrics=[column], out=tmp_path / "compare.md")
    assert comparison.path.read_text() == comparison.markdown
    assert comparison.markdown.startswith("# Policy comparison at generation 1")
    by_policy = {r["policy"]: r for r in comparison.table}
    replace, accumulate = api_run.rows[1][column], api_run.rows[3][column]
    assert (by_policy["replace"]["mean"], by_policy["accumulate"]["mean"]) == (replace, accumulate)
    assert by_policy["accumulate"]["diff_mean"] == pytest.approx(accumulate - replace)
    windowed = collapse_sim.compare([api_run.root], metrics=[column], generations="1-1")
    assert windowed.comparison.window == (1, 1) and windowed.path is None


@pytest.mark.parametrize("call, expected", [
    (lambda out: collapse_sim.run(_scenario(generations=-1), out, local=True), "generations"),
    (lambda out: collapse_sim.run(_scenario(surprise=1), out, local=True), "surprise"),
    (lambda out: collapse_sim.run(out / "absent.yaml", out, local=True), "scenario file not found"),
    (lambda out: collapse_sim.run(_silicon(), out, local=True),
     "scenario: oracle: oracle ase.calculators.emt.EMT cannot label Si"),
    (lambda out: collapse_sim.run(_scenario(), out, progress=0), "--progress-interval 0"),
    (lambda out: collapse_sim.run(42, out), "scenario: give a YAML path, a mapping or a Scenario"),
    (lambda out: collapse_sim.resume(out), "not a run directory (no scenario.yaml)"),
    (lambda out: collapse_sim.load(out), "not a run directory (no scenario.yaml)"),
    (lambda out: collapse_sim.write_report([out], out / "r.html"), "out: no such directory"),
    (lambda out: collapse_sim.validate_theory(quickstart_dict(), out=out, local=True), "scenario: model.kind"),
    (lambda out: collapse_sim.validate_theory(out / "absent.yaml", seeds=1), "scenario file not found"),
])
def test_bad_input_raises_one_line_and_writes_nothing(tmp_path, call, expected):
    out = tmp_path / "out"
    with pytest.raises(UsageError) as error:
        call(out)
    message = str(error.value)
    assert expected in message and "\n" not in message, message
    assert not out.exists()


def test_bad_options_of_a_finished_run_write_nothing(api_run, tmp_path):
    before = _files(api_run.root)
    for call, expected in [
        (lambda: collapse_sim.run(_scenario(), api_run.root.parent, local=True), "already holds a run"),
        (lambda: collapse_sim.write_report(api_run, tmp_path / "r.html", threshold=-1), "--threshold -1"),
        (lambda: collapse_sim.write_report(api_run, tmp_path, heatmaps=False), "is a directory"),
        (lambda: collapse_sim.compare(api_run, metrics=["rmse_nothing"], out=tmp_path / "c.md"),
         "--metric rmse_nothing"),
        (lambda: collapse_sim.compare(api_run, generations=(2, 1)), "--generations"),
        (lambda: collapse_sim.compare([api_run, api_run.root]), "given twice"),
    ]:
        with pytest.raises(UsageError, match=expected):
            call()
    assert _files(api_run.root) == before and list(tmp_path.iterdir()) == []


def test_a_blocking_file_as_out(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(UsageError, match="--out .*runs: exists and is not a directory"):
        collapse_sim.run(_scenario(), tmp_path / "runs", local=True)


def test_importing_the_package_is_cheap():
    code = ("import sys, collapse_sim\n"
            "heavy = [m for m in ('torch', 'ray', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert callable(collapse_sim.run) and issubclass(collapse_sim.UsageError, ValueError)\n"
            "assert callable(collapse_sim.write_report)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_scenario_errors_are_usage_errors():
    from collapse_sim.scenario import ScenarioError

    assert issubclass(ScenarioError, UsageError) and issubclass(UsageError, ValueError)


# --- the documentation page -------------------------------------------------------------
PAGE = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
#: what each call of the page returns, for checking the attributes the page uses on it
RETURNS = {"run": "Run", "resume": "Run", "load": "Run", "write_report": "ReportResult", "compare": "CompareResult"}


def _members(cls) -> set[str]:
    return set(dir(cls)) | {f.name for f in dataclasses.fields(cls)}


def _bind(function, call: ast.Call, method: bool = False) -> None:
    """The call's positional and keyword arguments fit ``function``'s signature."""
    args = [None] * (len(call.args) + method)
    inspect.signature(function).bind(*args, **{k.arg: None for k in call.keywords})


def _owner(node) -> str | None:
    """``x`` of an attribute ``x.name``."""
    return node.value.id if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) else None


def test_the_python_api_page_uses_the_api_as_it_is():
    """Every ``collapse_sim.<name>(...)`` of the page's examples exists and accepts its arguments,
    and every attribute the examples use on a returned object exists (and accepts its arguments)."""
    from collapse_sim import api

    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    used, typed = set(), {}
    for tree in map(ast.parse, blocks):
        for node in ast.walk(tree):  # what the examples get back: Run, ReportResult, CompareResult
            if isinstance(node, ast.Assign) and isinstance(call := node.value, ast.Call) \
                    and _owner(call.func) in {"collapse_sim", *typed} and call.func.attr in RETURNS:
                typed |= {target.id: getattr(api, RETURNS[call.func.attr]) for target in node.targets}
        calls = {id(c.func): c for c in ast.walk(tree) if isinstance(c, ast.Call)}
        for node in ast.walk(tree):
            if (owner := _owner(node)) == "collapse_sim":
                used.add(node.attr)
                assert node.attr in api.__all__, node.attr
                if id(node) in calls:
                    _bind(getattr(api, node.attr), calls[id(node)])
            elif owner in typed:
                assert node.attr in _members(typed[owner]), f"{owner}.{node.attr}"
                if id(node) in calls:
                    _bind(getattr(typed[owner], node.attr), calls[id(node)], method=True)
    assert {"run", "resume", "load", "compare", "UsageError"} <= used
    assert {"run", "result", "comparison"} <= set(typed)


def _rendered(function) -> str:
    """``name(a, b="x", *, c=None)``: a signature as the page's table writes it."""
    parts, star = [], False
    for p in inspect.signature(function).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        default = "" if p.default is p.empty else "=" + (f'"{p.default}"' if isinstance(p.default, str)
                                                        else repr(p.default))
        parts.append(p.name + default)
    return f"{function.__name__}({', '.join(parts)})"


def test_the_python_api_page_table_shows_the_signatures():
    from collapse_sim import api

    shown = re.findall(r"^\| `(\w+\(.*?\))` \|", PAGE.read_text(), re.M)
    names = ("run", "resume", "load", "validate", "write_report", "compare", "validate_theory", "converge", "pretrain",
             "zoo")
    assert shown == [_rendered(getattr(api, name)) for name in names]
