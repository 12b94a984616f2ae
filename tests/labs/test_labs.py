"""Labs and the commons: settings, the barrier, and a tiny two-lab run (one process)."""
from __future__ import annotations

import copy

import pytest
from conftest import run_scenario
from scenario_factory import TINY_MACE, tiny_molecules, tiny_scenario_dict

from collapse_sim.data.io import read_structures
from collapse_sim.labs.lineages import lab_lineages
from collapse_sim.lockstep import Lockstep
from collapse_sim.plan import build_plan
from collapse_sim.scenario import ScenarioError, parse_scenario
from collapse_sim.store import RunStore

#: lab b: a different 'functional' (EMT with ASAP's cutoff) and an invariant MACE (scalars only)
LABS = [{"name": "a"},
        {"name": "b", "oracle": {"calculator": "ase.calculators.emt.EMT", "kwargs": {"asap_cutoff": True}},
         "model": {**TINY_MACE, "hidden_irreps": "8x0e"}, "architecture": "mace-invariant"}]


def labs_dict(**overrides) -> dict:
    data = tiny_scenario_dict(name="tinylabs", policies=[{"kind": "accumulate"}], labs=copy.deepcopy(LABS),
                              commons={"k": 2})
    data.update(overrides)
    return data


def test_lab_lineages_pair_conditions_and_share_generation_zero():
    specs = lab_lineages(parse_scenario(labs_dict(seeds=[0, 1])))
    assert [s.name for s in specs[:4]] == ["a@commons=on-s0", "b@commons=on-s0", "a@commons=off-s0", "b@commons=off-s0"]
    assert len(specs) == 8
    by_name = {s.name: s for s in specs}
    assert by_name["a@commons=on-s0"].gen0_key == by_name["a@commons=off-s0"].gen0_key
    assert by_name["a@commons=on-s0"].gen0_key != by_name["b@commons=on-s0"].gen0_key
    assert by_name["a@commons=on-s0"].gen0_key != by_name["a@commons=on-s1"].gen0_key
    assert by_name["a@commons=on-s0"].lab.commons_fraction == 0.5
    assert by_name["a@commons=off-s0"].lab.commons_fraction == 0
    b = by_name["b@commons=on-s0"]
    assert b.scenario.oracle.kwargs == {"asap_cutoff": True} and b.scenario.model.hidden_irreps == "8x0e"
    assert (b.lab.architecture, b.lab.data_source) == ("mace-invariant", "EMT(asap_cutoff=True)")
    assert by_name["a@commons=on-s0"].lab.architecture == "mace"


def test_a_lab_with_its_own_structures_is_its_own_data_source():
    data = labs_dict()
    data["labs"][1]["system"] = {"kind": "bulk", "element": "Cu", "lattice_constant": 3.7}
    specs = {s.lab.lab: s for s in lab_lineages(parse_scenario(data)) if s.lab.commons == "on"}
    assert specs["b"].scenario.system.lattice_constant == 3.7 and specs["a"].scenario.system.lattice_constant == 3.61
    assert specs["a"].gen0_key != specs["b"].gen0_key


def test_commons_control_off_runs_only_the_shared_labs():
    specs = lab_lineages(parse_scenario(labs_dict(commons={"fraction": 0.25, "control": False, "k": 2})))
    assert [(s.name, s.lab.commons_fraction) for s in specs] == [("a@commons=on-s0", 0.25), ("b@commons=on-s0", 0.25)]


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["labs"].append({"name": "a"}), "labs: duplicate lab names ['a']"),
    (lambda d: d.update(sweep={"model.epochs": [1, 2]}), "sweep: a scenario with labs has no sweep axes"),
    (lambda d: d.update(policies=[{"kind": "replace"}, {"kind": "accumulate"}]), "labs.0.policy: required"),
    (lambda d: d["labs"][1].update(model={"kind": "mace", "epochs": -1}), "labs.1.model.epochs"),
    (lambda d: d["labs"][1].update(model={"kind": "gaussian"}), "labs.1 (b): system.kind 'bulk' and model.kind"),
    (lambda d: d["labs"][0].update(commons_fraction=1.5), "labs.0.commons_fraction"),
    (lambda d: d["labs"][0].update(name="a b"), "labs.0.name"),
    (lambda d: d.update(commons={"k": 3}), "probes.id.n_structures: 8 is too few for commons.k=3 (need >= 4 k"),
])
def test_bad_labs_name_the_field(mutate, expected):
    data = labs_dict()
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert expected in str(info.value)


def test_a_lab_system_must_hold_the_scenarios_elements():
    """Molecule pools as data sources: a lab's pool without nitrogen could not represent the probes."""
    data = tiny_molecules() | {"labs": [{"name": "a"}, {"name": "b", "system": {
        "kind": "molecules", "smiles": ["CCO", "Fc1ccccc1"], "ood_smiles": ["CCOc1ccc(F)cc1"]}}],
        "policies": [{"kind": "accumulate"}], "commons": {"k": 2}}
    with pytest.raises(ScenarioError, match=r"labs.1.system: its elements \['C', 'F', 'H', 'O'\] differ from the "
                                            r"scenario system's \['C', 'F', 'H', 'N', 'O'\]"):
        parse_scenario(data)
    data["labs"][1]["system"]["smiles"].append("CCN")
    assert parse_scenario(data).labs[1].system.smiles == ["CCO", "Fc1ccccc1", "CCN"]


def test_lockstep_waits_for_every_lab_of_an_ecosystem():
    plan = build_plan(parse_scenario(labs_dict(generations=2)))
    a_on, b_on, a_off, b_off = plan.lineages
    step = Lockstep(plan)
    assert step.start(a_on) == [(a_on, 0, 0)]  # step 0 publishes generation 0's samples
    assert step.finish(a_on, 0) == []
    assert step.finish(a_off, 0) == []  # another ecosystem: does not complete 'on'
    assert step.finish(b_on, 0) == [(a_on, 1, 1), (b_on, 1, 1)]
    assert step.finish(b_off, 0) == [(a_off, 1, 1), (b_off, 1, 1)]
    step.finish(a_on, 1)
    assert step.finish(b_on, 1) == [(a_on, 2, 2), (b_on, 2, 2)]
    step.finish(a_on, 2)
    assert step.finish(b_on, 2) == []  # the last generation: nothing follows


def test_a_lone_lineage_is_an_ecosystem_of_one_that_never_waits():
    plan = build_plan(parse_scenario(tiny_scenario_dict(generations=3)))
    step = Lockstep(plan)
    assert [eco.members for eco in plan.ecosystems] == [(s.name,) for s in plan.lineages]
    assert not any(eco.commons for eco in plan.ecosystems)
    for spec in plan.lineages:
        assert step.start(spec) == [(spec, 1, 3)]  # every generation in one task, at once
        assert step.finish(spec, 3) == []


@pytest.fixture(scope="module")
def labs_run(tmp_path_factory):
    """Two labs, commons on and off, one model-fed generation, in this process."""
    scenario = parse_scenario(labs_dict(generations=1))
    return (scenario, *run_scenario(tmp_path_factory.mktemp("labs"), scenario))


def test_commons_holds_exactly_what_the_labs_published(labs_run):
    scenario, root, rows = labs_run
    store = RunStore(root)
    n = scenario.synthetic.n_structures
    for ecosystem in ("on-s0", "off-s0"):
        for lab in ("a", "b"):
            lineage = f"{lab}@commons={ecosystem.split('-')[0]}-s0"
            published = store.read_publication(ecosystem, 0, lab)
            record = store.publication(ecosystem, 0, lab)
            gen0 = store.generation(lineage, 0).read_row()
            assert len(published) == record["n"] == n
            assert record["producer"] == [gen0["model_hash"]]
            assert {(a.info["lab"], a.info["origin"], a.info["generation"], a.info["producer"], a.info["lineage"])
                    for a in published} == {(lab, "synthetic", 0, gen0["model_hash"], lineage)}
        # the last generation's samples are not published: nobody draws from them
        assert store.publication(ecosystem, 1, "a") is None
    # the same lab's generation 0 is shared between the conditions, and so is its first publication
    on, off = (store.read_publication(e, 0, "a") for e in ("on-s0", "off-s0"))
    assert [a.positions.tolist() for a in on] == [a.positions.tolist() for a in off]


def test_labs_draw_from_the_commons_only_when_it_is_on(labs_run):
    scenario, root, rows = labs_run
    store = RunStore(root)
    n = scenario.synthetic.n_structures
    shared = round(scenario.commons.fraction * n)
    for lab, other in (("a", "b"), ("b", "a")):
        for condition, n_other in (("on", shared), ("off", 0)):
            lineage = f"{lab}@commons={condition}-s0"
            offered = read_structures(store.generation(lineage, 1).sampled)
            train = read_structures(store.generation(lineage, 1).train)
            assert len(offered) == n
            assert sum(a.info.get("lab") == other for a in offered) == n_other
            assert sum(a.info.get("lab") == other for a in train) == n_other
            published = {a.positions.tobytes()
                         for e in (f"{condition}-s0",) for a in store.read_publication(e, 0, other)}
            assert sum(a.positions.tobytes() in published for a in train) == n_other
            row = next(r for r in rows if r["lineage"] == lineage and r["generation"] == 1)
            assert row["n_commons"] == n_other and row["commons"] == condition and row["lab"] == lab


def test_ecosystem_metrics_of_the_run(labs_run):
    import json

    import numpy as np

    from collapse_sim.metrics.tree import parse_newick

    scenario, root, rows = labs_run
    summary = json.loads((root / "ecosystem.json").read_text())
    assert summary["labs"] == {"a": {"architecture": "mace", "data_source": "EMT()"},
                               "b": {"architecture": "mace-invariant", "data_source": "EMT(asap_cutoff=True)"}}
    on, off = summary["ecosystems"]["on-s0"], summary["ecosystems"]["off-s0"]
    assert (on["commons"], off["commons"]) == ("on", "off") and sorted(on["generations"]) == ["0", "1"]
    for probe in ("id", "ood"):
        # generation 0 is shared: the same models, the same matrices
        assert on["generations"]["0"][probe] == off["generations"]["0"][probe]
        for condition in (on, off):
            entry = condition["generations"]["1"][probe]
            cknna = np.array(entry["cknna"])
            assert cknna.shape == (2, 2) and np.allclose(np.diag(cknna), 1) and np.allclose(cknna, cknna.T)
            assert entry["monoculture"] == cknna[0, 1]
        tree = summary["trees"]["0"]
        assert tree["models"] == ["a.g0", "b.g0", "a.g1.on", "b.g1.on", "a.g1.off", "b.g1.off"]
        leaves = sorted(t.name for t in parse_newick(tree[probe]["newick"]).get_terminals())
        assert leaves == sorted(tree["models"])


def test_report_has_the_ecosystem_section(labs_run, tmp_path):
    from collapse_sim.report.build import build_report

    _, root, _ = labs_run
    result = build_report([root], tmp_path / "report.html", heatmaps=False, figures_dir=tmp_path / "figures")
    html = (tmp_path / "report.html").read_text()
    assert not result.warnings, result.warnings
    for title in ("Lab × lab alignment", "Monoculture index", "Information-imbalance plane of the labs",
                  "Evolutionary tree of the models"):
        assert title in html
    assert "gap by architecture" in html
    assert 'id="fig-eco_tree-tinylabs-ID-seed-0"' in html
    written = {p.name for p in (tmp_path / "figures").iterdir()}  # --figures: every figure as a PNG
    assert "fig-eco_tree-tinylabs-ID-seed-0.png" in written and len(written) == html.count("data:image/png;base64")
    assert (tmp_path / "figures" / "fig-eco_tree-tinylabs-ID-seed-0.png").read_bytes()[:4] == b"\x89PNG"


def test_an_interrupted_labs_run_resumes_to_the_same_rows(labs_run, tmp_path):
    """A generation and a publication lost (as a kill leaves it): the resumed run redoes exactly
    those and ends with the same rows and the same commons."""
    import shutil

    from collapse_sim.loop import reproducible_fields

    scenario, root, rows = labs_run
    copy_root = tmp_path / root.name
    shutil.copytree(root, copy_root)
    shutil.rmtree(copy_root / "a@commons=on-s0" / "gen-001")
    (copy_root / "commons" / "on-s0" / "gen-000" / "b.json").unlink()
    (copy_root / "ecosystem.json").unlink()
    _, resumed = run_scenario(tmp_path, scenario)  # the copy: resumed where it was cut
    strip = lambda rs: [reproducible_fields(r) for r in rs]
    assert strip(resumed) == strip(rows)
    for lab in ("a", "b"):
        store, again = RunStore(root), RunStore(copy_root)
        assert ([a.positions.tolist() for a in again.read_publication("on-s0", 0, lab)]
                == [a.positions.tolist() for a in store.read_publication("on-s0", 0, lab)])
    assert (copy_root / "ecosystem.json").read_text() == (root / "ecosystem.json").read_text()


@pytest.mark.integration
def test_labs_under_ray_equal_the_in_process_run(labs_run, ray_session, tmp_path):
    """The barrier under Ray (labs of an ecosystem in parallel tasks): the same rows bit for bit."""
    from collapse_sim.loop import reproducible_fields
    from collapse_sim.runtime.executor import RayExecutor

    scenario, _, rows = labs_run
    strip = lambda rs: [reproducible_fields(r) for r in rs]
    assert strip(run_scenario(tmp_path, scenario, RayExecutor())[1]) == strip(rows)
