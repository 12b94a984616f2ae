"""The report: a self-contained HTML page plus report.md, from healthy, damaged and several run
directories; rendered in headless Chromium to check that every figure decodes."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from collapse_sim.measure.catalogue import METRICS, UP
from collapse_sim.report import build_report
from collapse_sim.report.analysis import findings
from collapse_sim.report.rundata import assign_labels, load_run
from collapse_sim.report.style import POLICY_COLOURS, policy_colours

SECTIONS = ("overview", "findings", "collapse-curves", "onsets", "statistics", "oracle-cost", "information-imbalance",
            "alignment-heatmaps", "provenance", "distribution-drift", "run-details")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMG = re.compile(r'<img\s+src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


# --- helpers ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    """The report of the untouched tiny run: (result, html text, run dir, rows)."""
    _, run_dir, rows = tiny_run
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = build_report([run_dir], out)
    return result, out.read_text(), run_dir, rows


def copy_run(tiny_run, dest):
    _, run_dir, _ = tiny_run
    target = dest / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def rewrite_rows(run_dir, edit):
    """Apply ``edit(row) -> row`` to every row of metrics.jsonl and every gen-*/metrics.json."""
    path = run_dir / "metrics.jsonl"
    rows = [edit(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for m in run_dir.glob("*/gen-*/metrics.json"):
        m.write_text(json.dumps(edit(json.loads(m.read_text()))))


def assert_self_contained(text):
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I), "external resource referenced"
    assert not re.search(r"<link\b|<script[^>]+src=|@import|url\(\s*['\"]?https?:", text, re.I)


def images(text):
    found = IMG.findall(text)
    for data in found:
        assert base64.b64decode(data).startswith(PNG_SIGNATURE)
    return found


def warning_box(text):
    m = re.search(r'<section id="warnings" class="warning-box".*?</section>', text, re.S)
    return m.group(0) if m else ""


# --- the healthy run ---------------------------------------------------------------------------
def test_report_is_self_contained_with_every_section(report):
    result, text, run_dir, rows = report
    assert result.html.is_file() and result.markdown.is_file()
    assert result.markdown.name == "report.md" and result.markdown.parent == result.html.parent
    assert_self_contained(text)
    for section in SECTIONS:
        assert f'<section id="{section}"' in text, section
    assert result.warnings == [] and not warning_box(text)
    # accuracy curves, heatmaps (8 ID probes >= k+2 with the scenario's k=4), provenance, drift
    for figure in ("fig-accuracy", "fig-oracle-cost", "fig-heatmaps", "fig-provenance", "fig-drift"):
        assert f'id="{figure}"' in text, figure
    if any("ii_ref_to_model_id" in r for r in rows):  # the metric suite of the run records imbalances
        assert 'id="fig-ii-ref"' in text and 'id="fig-align_gen0"' in text
    assert len(images(text)) >= 5
    for lineage in ("replace-s0", "accumulate-s0", "fresh-real-s0"):
        assert lineage in text
    for package in ("collapse_sim", "mace-torch", "torch", "ase", "ray"):
        assert f"<th>{package}</th>" in text
    assert "train_seconds" in text and "sample_seconds" in text


def test_markdown_summary(report):
    result, _, _, _ = report
    md = result.markdown.read_text()
    assert md.startswith("# Model-collapse report: tiny")
    assert "## Findings" in md and "| rank | policy |" in md
    for lineage in ("replace-s0", "accumulate-s0", "fresh-real-s0"):
        assert f"| {lineage} |" in md
    assert "(report.html)" in md


def test_policy_colours_are_fixed_and_used(report):
    _, text, _, _ = report
    for policy in ("replace", "accumulate", "fresh-real"):
        assert f'background: {POLICY_COLOURS[policy]}"></span>{policy}' in text
    assert policy_colours(["zeta", "replace"])["replace"] == POLICY_COLOURS["replace"]
    extra = policy_colours(["zeta", "alpha", "replace", "accumulate"])
    assert extra == policy_colours(["accumulate", "replace", "alpha", "zeta"])  # order does not matter
    assert len(set(extra.values())) == 4 and not {extra["zeta"], extra["alpha"]} & set(POLICY_COLOURS.values())


# --- in a browser ------------------------------------------------------------------------------
def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def _chromium_run(binary, tmp_path, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=180)


@pytest.mark.integration  # starts a browser
def test_page_renders_in_headless_chromium(report, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (CI installs Debian's 'chromium' package)")
    from PIL import Image

    result, text, _, _ = report
    url = result.html.resolve().as_uri()
    n_images = len(images(text))
    dom = _chromium_run(binary, tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-images-ok="true"' in body, body
    assert f'data-images-total="{n_images}"' in body and f'data-images-loaded="{n_images}"' in body, body

    shot = tmp_path / "page.png"
    run = _chromium_run(binary, tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", "--hide-scrollbars", url)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1400)
    assert pixels.std() > 10, "screenshot is blank"
    lower = pixels[1500:]  # below the header: figures, not only text
    assert (lower < 250).mean() > 0.02


# --- damaged run directories -----------------------------------------------------------------
def _truncate_last_line(run_dir):
    path = run_dir / "metrics.jsonl"
    text = path.read_text().rstrip("\n")
    path.write_text(text[: len(text) - 40])


def _delete_generation(run_dir):
    shutil.rmtree(run_dir / "replace-s0" / "gen-001")


def _delete_metrics_json(run_dir):
    (run_dir / "accumulate-s0" / "gen-002" / "metrics.json").unlink()


def _garble_extxyz(run_dir):
    (run_dir / "fresh-real-s0" / "gen-001" / "sampled.extxyz").write_text("3\nnot an extxyz header\nCu 0 0\n")
    (run_dir / "fresh-real-s0" / "gen-002" / "train.extxyz").write_bytes(b"\x00\xff" * 100)


def _garble_embeddings(run_dir):
    (run_dir / "replace-s0" / "gen-002" / "embeddings_id.npy").write_bytes(b"not an npy file")


def _delete_metrics_jsonl_and_scenario(run_dir):
    (run_dir / "metrics.jsonl").unlink()
    (run_dir / "scenario.yaml").write_text("name: [unclosed\n")


DAMAGE = {
    "truncated-metrics-line": (_truncate_last_line, "truncated"),
    "deleted-generation": (_delete_generation, "gen-001 missing"),
    "missing-metrics-json": (_delete_metrics_json, "no metrics.json"),
    "unreadable-extxyz": (_garble_extxyz, "unreadable"),
    "no-metrics-jsonl-bad-scenario": (_delete_metrics_jsonl_and_scenario, "scenario.yaml is unreadable"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_run_gives_report_with_warning(tiny_run, tmp_path, damage):
    run_dir = copy_run(tiny_run, tmp_path)
    apply, expected = DAMAGE[damage]
    apply(run_dir)
    result = build_report([run_dir], tmp_path / "out" / "report.html")
    text = result.html.read_text()
    box = warning_box(text)
    assert box, "no warning box"
    assert expected in box, box
    assert any(expected in w for w in result.warnings)
    assert_self_contained(text)
    images(text)
    assert "## ⚠ Warnings" in result.markdown.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}"' in text


def test_everything_damaged_at_once(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path)
    for apply in (_truncate_last_line, _delete_generation, _delete_metrics_json, _garble_extxyz, _garble_embeddings):
        apply(run_dir)
    result = build_report([run_dir], tmp_path / "report.html")
    text = result.html.read_text()
    box = warning_box(text)
    for expected in ("truncated", "gen-001 missing", "no metrics.json", "unreadable"):
        assert expected in box, expected
    assert "gen-002 probe embeddings are unreadable" in text  # the heatmap row of the garbled file is blank
    assert 'id="fig-heatmaps"' in text and 'id="fig-accuracy"' in text


# --- several run directories -------------------------------------------------------------------
def test_two_runs_with_mismatched_metrics(tiny_run, tmp_path):
    a = copy_run(tiny_run, tmp_path / "machine-a")
    b = copy_run(tiny_run, tmp_path / "machine-b")
    rewrite_rows(a, lambda r: r | {"my_extra_metric": 1.5 + r["generation"], "note_text": "free text"})
    rewrite_rows(b, lambda r: {k: v for k, v in r.items() if not k.startswith(("rmse_forces_ood", "cknna_"))})
    scenario = yaml.safe_load((b / "scenario.yaml").read_text())
    scenario["oracle"]["chunk_size"] = 99
    (b / "scenario.yaml").write_text(yaml.safe_dump(scenario))

    result = build_report([a, b], tmp_path / "report.html")
    text = result.html.read_text()
    assert result.warnings == []
    assert "tiny (machine-a)" in text and "tiny (machine-b)" in text  # same scenario name: labelled by folder
    assert "<code>oracle.chunk_size</code>" in text  # what differs between the runs
    assert "force RMSE (OOD): recorded only by tiny (machine-a)." in text
    assert 'id="fig-other"' in text  # the unknown numeric column is drawn as recorded
    assert re.search(r"Non-numeric columns not drawn: [^.]*note_text", text)
    md = result.markdown.read_text()
    assert "| tiny (machine-a) | tiny |" in md and "| tiny (machine-b) | tiny |" in md
    runs = [load_run(a), load_run(b)]
    assign_labels(runs)
    found = findings(runs, 0.2)
    assert {r.run for r in found.rows} == {"tiny (machine-a)", "tiny (machine-b)"} and len(found.rows) == 6
    if "cknna_ref_id" in found.columns:  # recorded by a only: b's cells say so instead of failing
        assert all(r.cells["cknna_ref_id"].note == "not recorded" for r in found.rows if r.run == "tiny (machine-b)")


def test_two_different_scenarios(tiny_run, tmp_path):
    a = copy_run(tiny_run, tmp_path / "one")
    b = copy_run(tiny_run, tmp_path / "two")
    scenario = yaml.safe_load((b / "scenario.yaml").read_text())
    scenario["name"] = "tiny-hot"
    scenario["synthetic"]["sampler"]["temperature_K"] = 900.0
    (b / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    result = build_report([a, b], tmp_path / "both.html", heatmaps=False)
    text = result.html.read_text()
    assert result.markdown.name == "both.md"
    assert "Model-collapse report: tiny, tiny-hot" in text
    assert "<code>synthetic.sampler.temperature_K</code>" in text and "<code>name</code>" in text
    assert text.count("<td>tiny-hot</td>") >= 3 + 3  # findings: run column of the ranking and per-lineage rows
    from collapse_sim.report.figures import Style

    runs = [load_run(a), load_run(b)]
    assign_labels(runs)
    assert Style(runs, {}).label("tiny-hot", "replace") == "tiny-hot · replace"  # legends name run + policy
    assert Style(runs, {}).linestyle("tiny") != Style(runs, {}).linestyle("tiny-hot")
    assert "Heatmaps disabled" in text


# --- without Ray: a hand-made run directory ---------------------------------------------------
def _synthetic_run(root, policies=("replace", "accumulate"), seeds=(0, 1), generations=4):
    root.mkdir(parents=True)
    rows = []
    for policy in policies:
        for seed in seeds:
            for g in range(generations):
                growth = 1.0 + (0.3 if policy == "replace" else 0.02) * g
                rows.append({"policy": policy, "policy_kind": policy, "lineage": f"{policy}-s{seed}", "seed": seed,
                             "generation": g, "rmse_forces_id": 50.0 * growth + seed, "rmse_energy_id": 10.0 * growth,
                             "vendi_train": 20.0 / growth, "train_seconds": 1.0, "sample_seconds": 0.5 * (g > 0),
                             "cknna_prev_id": None if g == 0 else 0.9})
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_handmade_run_without_structures_or_models(tmp_path):
    run_dir = _synthetic_run(tmp_path / "handmade")
    result = build_report([run_dir], tmp_path / "r.html")
    text = result.html.read_text()
    assert "no scenario.yaml" in warning_box(text)
    assert 'id="fig-accuracy"' in text and 'id="fig-diversity"' in text
    assert "bands: ± standard error over seeds" in text
    assert "no generation saved probe embeddings" in text  # heatmaps skipped with a note
    assert "No readable train.extxyz" in text or "No readable training sets" in text


def test_collapse_onset_and_ranking(tmp_path):
    run = load_run(_synthetic_run(tmp_path / "r", seeds=(0,)))
    assign_labels([run])
    found = findings([run], threshold=0.2)
    assert found.columns == ["rmse_energy_id", "rmse_forces_id", "vendi_train"]
    by_lineage = {r.lineage: r for r in found.rows}
    # replace: ×1.3 at generation 1 -> RMSE +30 % (> 20 %), Vendi 20 -> 15.4 (-23 %)
    assert by_lineage["replace-s0"].cells["rmse_energy_id"].onset == 1
    assert by_lineage["replace-s0"].cells["vendi_train"].onset == 1
    assert by_lineage["accumulate-s0"].cells["rmse_energy_id"].onset is None  # +6 % at generation 3
    assert by_lineage["replace-s0"].cells["rmse_energy_id"].change == pytest.approx(0.9)
    assert [p.policy for p in found.ranking] == ["accumulate", "replace"]
    assert found.rows[0].policy == "accumulate"
    assert findings([run], threshold=0.05).rows[0].cells["rmse_energy_id"].onset == 3


def test_catalogue_directions():
    assert METRICS["rmse_forces_ood"].degrade == UP
    for column in ("vendi_train", "coverage_train", "id_twonn_model_id", "cknna_ref_id", "dcor_gen0_ood"):
        assert METRICS[column].degrade == "down"
    assert all(m.unit is not None and m.label for m in METRICS.values())


def test_heatmap_notes_for_too_few_probes_and_the_lineage_cap(tiny_run, tmp_path):
    _, run_dir, _ = tiny_run
    text = build_report([run_dir], tmp_path / "k.html", cknna_k=10).html.read_text()
    assert "too few for CKNNA with k=10 (need at least 4 k = 40); heatmaps skipped" in text
    assert 'id="fig-heatmaps"' not in text
    text = build_report([run_dir], tmp_path / "cap.html", max_heatmap_lineages=1).html.read_text()
    assert "Heatmaps are drawn for 1 of 3 lineages" in text and 'id="fig-heatmaps"' in text


def test_many_lineages_are_capped_in_provenance(tmp_path):
    from collapse_sim.report.data_figures import MAX_PROVENANCE_PANELS, _provenance_lineages
    from collapse_sim.report.figures import Style

    run = load_run(_synthetic_run(tmp_path / "many", seeds=tuple(range(10))))
    assign_labels([run])
    chosen, total = _provenance_lineages(Style([run], {}))
    assert total == 20 and len(chosen) == MAX_PROVENANCE_PANELS
    assert {lin.seed for _, lin in chosen if lin.policy == "replace"} == set(range(6))  # first seeds of each policy


def test_run_without_saved_embeddings_skips_heatmaps_once(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path)
    for path in run_dir.glob("*/gen-*/embeddings_*.npy"):
        path.unlink()
    result = build_report([run_dir], tmp_path / "r.html")
    text = result.html.read_text()
    assert text.count("no generation saved probe embeddings") == 1
    assert 'id="fig-heatmaps"' not in text and result.warnings == []


class _Payload:
    """Unpickling this runs code: it creates ``marker`` (what a hostile model file could do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_report_never_unpickles_model_files(tiny_run, tmp_path):
    import pickle

    run_dir = copy_run(tiny_run, tmp_path)
    marker = tmp_path / "code-ran"
    models = list(run_dir.glob("*/gen-*/model.model")) + list(run_dir.glob("reference/model.model"))
    assert models
    for path in models:
        path.write_bytes(pickle.dumps(_Payload(marker)))
    text = build_report([run_dir], tmp_path / "r.html").html.read_text()
    assert not marker.exists()
    assert 'id="fig-heatmaps"' in text  # drawn from the saved probe embeddings alone
