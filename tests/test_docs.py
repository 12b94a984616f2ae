"""The documentation: generated pages are current, every settings field is described, the
README stays short, and no page, module or scenario speaks of how the tool was developed."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "scripts"))

import doc_tables  # noqa: E402
import gen_docs  # noqa: E402
from settings_page import Reference  # noqa: E402

README_MAX_LINES = 250
#: development-process words: they describe how the tool was made, not the tool (CHANGELOG.md holds history)
PROCESS_WORDS = [re.compile(p, re.I) for p in (
    r"\bstops? \d+", r"\bthis VM\b", r"\bdevelopment VM\b", r"\bissue #", r"\bissue \d+", r"\bround [12]\b",
    r"\bprocedure \d\b")]
SCANNED = ["README.md", "docs", "collapse_sim", "scenarios"]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".j2", ".html", ".txt", ".csv", ".toml", ".json", ".css", ".js"}


def test_generated_pages_are_current():
    stale = gen_docs.stale_pages()
    assert not stale, ("stale documentation pages: " + ", ".join(str(p.relative_to(ROOT)) for p in stale)
                       + "; run python docs/scripts/gen_docs.py")


def test_every_settings_field_has_a_description():
    assert Reference().missing_descriptions() == [], "add description=... to these fields' Field(...)"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def test_readme_links_resolve():
    """The README is read on a repository host, outside the docs build: its relative links are checked here."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into the docs"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def _scanned_files():
    for name in SCANNED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        yield from (f for f in files if f.suffix in TEXT_SUFFIXES and "__pycache__" not in f.parts)


def test_no_development_process_words():
    hits = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}"
            for path in _scanned_files()
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if any(p.search(line) for p in PROCESS_WORDS)]
    assert not hits, "development-process words (history belongs in CHANGELOG.md):\n" + "\n".join(hits)


def test_a_table_block_is_rendered_from_its_csv(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "times.csv").write_text('scenario,wall time\nquickstart,"1 min | 2 s"\n', encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("Intro.\n\n<!-- table: data/times.csv -->\n| old | table |\n<!-- end table -->\n\nEnd.\n",
                    encoding="utf-8")
    expected = doc_tables.table_pages(tmp_path)
    assert doc_tables.stale(expected) == expected  # the old table is stale
    assert expected[page] == ("Intro.\n\n<!-- table: data/times.csv -->\n| scenario | wall time |\n| --- | --- |\n"
                              "| quickstart | 1 min \\| 2 s |\n<!-- end table -->\n\nEnd.\n")
    page.write_text(expected[page], encoding="utf-8")
    assert doc_tables.stale(doc_tables.table_pages(tmp_path)) == {}
    (tmp_path / "data" / "times.csv").write_text("scenario,wall time\nquickstart,2 min\n", encoding="utf-8")
    assert list(doc_tables.stale(doc_tables.table_pages(tmp_path))) == [page]  # the CSV changed


def test_a_table_block_naming_a_missing_csv_is_an_error(tmp_path):
    (tmp_path / "page.md").write_text("<!-- table: data/none.csv -->\n<!-- end table -->\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="data/none.csv"):
        doc_tables.table_pages(tmp_path)


def test_check_writes_nothing(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    monkeypatch.setattr(gen_docs, "stale_pages", lambda: {page: "text\n"})
    monkeypatch.setattr(gen_docs, "ROOT", tmp_path)
    assert gen_docs.main(["--check"]) == 1 and not page.exists()
    assert gen_docs.main([]) == 0 and page.read_text() == "text\n"


def test_a_newly_registered_kind_appears_in_the_reference():
    from typing import Literal

    from pydantic import Field

    from collapse_sim.policies import KINDS, PolicySettingsBase

    class ExampleSettings(PolicySettingsBase):
        """An example policy."""

        kind: Literal["example-doc"]
        share: float = Field(0.5, ge=0, description="an example share")

    class PluginSettings(PolicySettingsBase):
        """A plugin's policy: documented by its own package, not on this page."""

        kind: Literal["example-plugin"]

    ExampleSettings.__module__ = "collapse_sim.policies.example_doc"  # a new module of the package
    KINDS.register(ExampleSettings, object)
    KINDS.register(PluginSettings, object)
    try:
        page = Reference().page()
    finally:
        KINDS.unregister("example-doc")
        KINDS.unregister("example-plugin")
    assert "example-plugin" not in page
    assert "### policies: example-doc\n\nAn example policy." in page
    assert "| `share` | float ≥ 0 | `0.5` | an example share |" in page
    assert "[`example-doc`](#policies-example-doc)" in page
