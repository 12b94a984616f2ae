"""``collapse-sim report``: a one-line error and exit code 2 for bad input, the files for good input."""
from __future__ import annotations

import json

from collapse_sim.cli import main


def test_cli_rejects_non_run_directory(tmp_path, capsys):
    (tmp_path / "some.txt").write_text("x")
    out = tmp_path / "out" / "report.html"
    for bad in (tmp_path, tmp_path / "missing", tmp_path / "some.txt"):
        code = main(["report", str(bad), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("collapse-sim: error: ") and str(bad) in err
    assert not out.exists() and not out.parent.exists()


def test_cli_rejects_bad_threshold(tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(json.dumps({"lineage": "replace-s0", "generation": 0}) + "\n")
    code = main(["report", str(run_dir), "--threshold", "-1", "--out", str(tmp_path / "x.html")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--threshold" in err


def test_cli_writes_report(tiny_run, tmp_path, capsys):
    _, run_dir, _ = tiny_run
    out = tmp_path / "nested" / "r.html"
    code = main(["report", str(run_dir), "--out", str(out), "--threshold", "0.5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert out.is_file() and out.with_suffix(".md").is_file()
    assert "50.0 %" in out.read_text()
    assert captured.out.startswith(f"wrote {out}")
