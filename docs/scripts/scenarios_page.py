"""docs/scenarios.md: the shipped scenarios (scenarios/*.yaml), grouped by purpose, each with its
header comment, what it runs, its size (the package's own lineage expansion), the command that
runs it and its measured wall time (docs/data/scenario-times.csv)."""
from __future__ import annotations

from pathlib import Path

from doc_tables import GENERATED_NOTE, ROOT, markdown_table, read_csv, slug

TIMES_CSV = Path("docs") / "data" / "scenario-times.csv"


GROUPS = {
    "getting-started": ("Getting started", "One seed, a few generations: a first run and its report in minutes."),
    "studies": ("Studies", "Several seeds, so that differences between policies can be told from seed noise "
                           "(`collapse-sim compare`)."),
    "labs": ("Labs and the commons", "Several labs sharing a pool of model-generated structures; see "
                                     "[labs](labs.md)."),
    "theory": ("Theory checks", "Scenarios whose collapse laws are known in closed form, run through the same "
                                "loop by `collapse-sim validate-theory`; see [validation](validation.md)."),
    "sweeps": ("Sweeps", "A grid of scenario variants in one run; see [sweeps](sweeps.md)."),
}


def header_comment(text: str) -> str:
    """The YAML file's leading comment block as prose: paragraphs at empty comment lines;
    indented lines (commands) left out."""
    paragraphs, current = [], []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:].removeprefix(" ")
        if not body.strip():
            if current:
                paragraphs.append(current)
            current = []
        elif not body.startswith("  "):
            current.append(body.strip())
    paragraphs += [current] if current else []
    return "\n\n".join(" ".join(p).replace("*", r"\*") for p in paragraphs)


def group(scenario) -> str:
    """The key of ``scenario``'s group in GROUPS: sweeps, labs, closed-form checks (as
    ``validate-theory`` recognises them), then one seed (getting started) or several (studies)."""
    from collapse_sim.theory import TheoryError, experiment_kind
    if scenario.sweep:
        return "sweeps"
    if scenario.labs:
        return "labs"
    try:
        experiment_kind(scenario)
        return "theory"
    except TheoryError:
        pass
    return "getting-started" if len(scenario.seeds) == 1 else "studies"


def command(scenario, path: str) -> str:
    commands = {"theory": f"collapse-sim validate-theory {path}", "sweeps": f"collapse-sim sweep {path} --out runs/"}
    return commands.get(group(scenario), f"collapse-sim run {path} --out runs/")


def system_text(system) -> str:
    if system.kind == "bulk":
        from collapse_sim import systems
        atoms = len(systems.make(system).ideal())
        return f"{system.crystal} {system.element}, {atoms}-atom cells"
    if system.kind == "molecules":
        pool = (f"{len(system.smiles)} molecules" if system.smiles else
                "the packaged QM9-like pool" if not system.extxyz else f"`{system.extxyz}`")
        return f"molecules: {pool} (ID), " + ("its own OOD pool" if system.ood_smiles or system.ood_extxyz
                                              else "the packaged drug-like pool (OOD)")
    if system.kind == "gaussian":
        return f"samples of N({system.mean:g}, {system.std:g}²)"
    return f"`{system.kind}` system"


def runs_text(scenario) -> list[str]:
    from collapse_sim.labs.lineages import default_data_source
    sc = scenario
    lines = [f"**System:** {system_text(sc.system)}; **oracle:** `{default_data_source(sc.oracle)}`"
             + (f"; probes labelled by `{default_data_source(sc.reference_oracle)}`" if sc.reference_oracle else "")]
    lines.append(f"**Model:** `{sc.model.kind}`; **real structures:** {sc.real_data.n_structures} per seed; "
                 f"**synthetic:** {sc.synthetic.n_structures} per generation (`{sc.synthetic.sampler.kind}`)")
    lines.append("**Policies:** " + ", ".join(f"`{p.label}`" for p in sc.policies))
    if sc.labs:
        labs = ", ".join(f"`{lab.name}` ({lab.model.kind if lab.model else sc.model.kind}"
                         + (f", {lab.data_source}" if lab.data_source else "") + ")" for lab in sc.labs)
        lines.append(f"**Labs:** {labs}; commons fraction {sc.commons.fraction}"
                     + (", with a commons-off control" if sc.commons.control else ""))
    if sc.sweep:
        lines.append("**Sweep axes:** " + "; ".join(f"`{path}`: {', '.join(map(str, values))}"
                                                    for path, values in sc.sweep.items()))
    return lines


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def wall_time(name: str, times: dict[str, dict]) -> str:
    row = times.get(name)
    if row is None:
        return "not measured"
    return f"{row['wall_time']}, measured with `{row['command']}` on {row['machine']}, {row['date']}"


def scenario_entries(root: Path = ROOT) -> list[dict]:
    from collapse_sim.plan import build_plan
    from collapse_sim.scenario import load_scenario
    entries = []
    for path in sorted((root / "scenarios").glob("*.yaml")):
        sc = load_scenario(path)
        lineages = build_plan(sc).lineages
        entries.append({"name": path.stem, "file": f"scenarios/{path.name}", "scenario": sc, "group": group(sc),
                        "purpose": header_comment(path.read_text()), "lineages": len(lineages),
                        "gen0": len({spec.gen0_key for spec in lineages})})
    order = list(GROUPS)  # by group, the quickstart first, then by size
    return sorted(entries, key=lambda e: (order.index(e["group"]), e["name"] != "quickstart",
                                          e["lineages"] * e["scenario"].generations, e["name"]))


def scenarios_page(root: Path = ROOT) -> str:
    entries = scenario_entries(root)
    times_csv = root / TIMES_CSV
    header, rows = read_csv(times_csv) if times_csv.is_file() else ([], [])
    times = {row[0]: dict(zip(header, row)) for row in rows}
    out = ["# Shipped scenarios", GENERATED_NOTE.strip(),
           "The scenarios under `scenarios/`, grouped by purpose. Each is one YAML file (the "
           "[scenario reference](scenario-reference.md) lists every field); copy one and change it to make your "
           "own. A lineage is one chain of generations: one per policy and seed (times the sweep grid, or per lab "
           "and commons condition); lineages of a seed that would train the same generation 0 share it. Wall "
           "times are measured on a 2-core machine, with the command, machine and date of the measurement.",
           markdown_table(["scenario", "group", "seeds × generations", "lineages", "wall time"],
                          [[f"[{e['name']}](#{slug(e['name'])})", GROUPS[e["group"]][0],
                            f"{len(e['scenario'].seeds)} × {e['scenario'].generations}", str(e["lineages"]),
                            times.get(e["name"], {}).get("wall_time", "not measured").split(" (")[0]]
                           for e in entries]).strip()]
    for key, (title, intro) in GROUPS.items():
        members = [e for e in entries if e["group"] == key]
        if not members:
            continue
        out += [f"## {title}", intro]
        for e in members:
            sc = e["scenario"]
            facts = runs_text(sc) + [
                f"**Size:** {plural(len(sc.seeds), 'seed')} × {plural(sc.generations, 'model-fed generation')}: "
                f"{plural(e['lineages'], 'lineage')} on {plural(e['gen0'], 'generation 0')}",
                f"**Run:** `{command(sc, e['file'])}`",
                f"**Wall time:** {wall_time(e['name'], times)}"]
            out += [f"### {e['name']}", f"`{e['file']}`", e["purpose"], "\n".join(f"- {f}" for f in facts)]
    out += ["## Measured wall times", "<!-- table: data/scenario-times.csv -->\n<!-- end table -->"]
    return "\n\n".join(p for p in out if p) + "\n"
