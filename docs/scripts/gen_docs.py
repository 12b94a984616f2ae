"""Write the generated documentation pages, or check that they are up to date.

    python docs/scripts/gen_docs.py           # write every stale page
    python docs/scripts/gen_docs.py --check   # list the stale pages, exit 1 if any; writes nothing

Generated pages: ``docs/scenario-reference.md`` (from the scenario's pydantic settings and the
kind registries), ``docs/metrics.md`` (from ``collapse_sim.measure.catalogue``) and
``docs/scenarios.md`` (from ``scenarios/*.yaml`` and ``docs/data/scenario-times.csv``). In any
``docs/**/*.md`` page a block::

    <!-- table: data/NAME.csv -->
    ...
    <!-- end table -->

is re-rendered as a Markdown table of that CSV file (path relative to ``docs/``; the first row
is the header; cells verbatim).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the page modules beside this script

from doc_tables import GENERATED_NOTE, ROOT, stale, table_pages

# ----------------------------------------------------------------------------- metrics page

METRICS_INTRO = """
Every committed generation of every lineage writes one row: a JSON object in its generation
directory (`metrics.json`), gathered into `metrics.jsonl` at the top of the
[run directory](run-directory.md), one line per lineage × generation. A row identifies its
lineage and generation, counts what the training set was made of, times each stage, and
measures the model and its data against the run's fixed yardsticks: the two probe sets, the
reference model and the real reference data.

A column name with a placeholder in braces stands for one column per value of the
placeholder: `rmse_forces_{probe}` is `rmse_forces_id` and `rmse_forces_ood`. A model kind may
add its own fields to the row (the linear model's `linear_weight_norm`, the Gaussian model's
`gauss_mean` and `gauss_var`). "Worse when it" says which direction counts as degradation; the
report's collapse onset and its findings table use it.
"""

METRICS_NOTES = """
## Embeddings and descriptors

**Embeddings** are what the alignment columns compare: per structure, the mean over its atoms
of the model's invariant features: for MACE the invariant (0e) node features of every
interaction layer, for ANI the last hidden layer of each atom's element network. Each
generation stores its probe-set embeddings as `embeddings_{probe}.npy`.

**Descriptors** are what the data columns compare: per-structure averages of SOAP power
spectra (dscribe; `metrics.soap_r_cut`, `metrics.soap_n_max`, `metrics.soap_l_max`),
standardised by the real reference data. The reference model, its training data and
embeddings, and the real-data statistics live in `reference/` of the run directory.

## CKNNA

CKNNA follows the released code of Huh et al. 2024: each self-term HSIC uses its own space's
kNN mask. (With the mutual mask in the self-terms, as a literal reading of the formula
suggests, unrelated random data scores ≈ 1.)

**Probe-set size.** With k close to the number of probe structures CKNNA's self-terms shrink,
it is no longer bounded by 1, and values at different sizes do not compare. Validation therefore
requires every probe set to hold at least 4 × `metrics.k` structures (40 for the default k = 10)
and, with labs, 4 × `commons.k` (100 for the default k = 25), and `collapse_sim.metrics.cknna`
refuses fewer rows than 4 k wherever it is called (the report's heatmaps and `--cknna-k` say so
and skip).
"""


def metrics_page() -> str:
    from collapse_sim.measure.catalogue import markdown_table as column_table
    return "\n\n".join(["# Metrics", GENERATED_NOTE.strip(), METRICS_INTRO.strip(), "## Columns",
                        column_table().strip(), METRICS_NOTES.strip()]) + "\n"


# ----------------------------------------------------------------------------- all pages

def expected_pages(root: Path = ROOT) -> dict[Path, str]:
    """Every page this script writes or renders tables in -> the text it should hold. Exits
    naming the settings fields that have no description."""
    from scenarios_page import scenarios_page
    from settings_page import Reference

    docs = root / "docs"
    reference = Reference()
    if missing := reference.missing_descriptions():
        raise SystemExit("settings fields without a description (add description=... to the Field):\n  "
                         + "\n  ".join(missing))
    return table_pages(docs, {docs / "scenario-reference.md": reference.page(), docs / "metrics.md": metrics_page(),
                              docs / "scenarios.md": scenarios_page(root)})


def stale_pages(root: Path = ROOT) -> dict[Path, str]:
    return stale(expected_pages(root))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale pages and exit 1 if any; write nothing")
    args = parser.parse_args(argv)
    pages = stale_pages()
    for path, text in pages.items():
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and pages:
        print("run: python docs/scripts/gen_docs.py")
    return 1 if args.check and pages else 0


if __name__ == "__main__":
    sys.exit(main())
