"""Screenshots of the HTML report for the README and docs/report.md, taken from a real run.

    python docs/scripts/report_screenshots.py                   # runs scenarios/quickstart.yaml first (minutes)
    python docs/scripts/report_screenshots.py --run RUN_DIR     # an existing run directory

Builds the report of the run with ``collapse_sim.report.build_report`` (what ``collapse-sim
report`` calls), then takes headless-Chromium screenshots: ``docs/img/report.png`` (the first
screen, 1280 x 900) and one ``docs/img/report-<section>.png`` per section of the page, each from
a copy of the page that holds only that section. Long figure sections keep their first figures.
Every PNG is cropped below its content, reduced to a palette and kept under ``--max-kb``.
Needs Chromium (``chromium`` on PATH, or ``--chromium``) and Pillow (installed with matplotlib).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
WIDTH = 1280
FIRST_SCREEN = (WIDTH, 900)
#: (file suffix, section ids shown together, at most this many figures per section, <details> opened)
SHOTS = [
    ("findings", ["header", "overview", "findings"], None, False),
    ("curves", ["collapse-curves"], 2, False),
    ("onsets", ["onsets"], None, False),
    ("statistics", ["statistics"], None, False),
    ("oracle-cost", ["oracle-cost"], None, False),
    ("information-imbalance", ["information-imbalance"], 1, False),
    ("heatmaps", ["alignment-heatmaps"], None, False),
    ("ecosystem", ["ecosystem"], 2, False),
    ("provenance", ["provenance"], None, False),
    ("drift", ["distribution-drift"], None, False),
    ("run-details", ["run-details"], None, True),
]


def chromium_binary(given: str | None) -> str:
    for name in ([given] if given else ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]):
        if path := shutil.which(name):
            return path
    sys.exit("no Chromium found: install it (Debian: apt-get install chromium) or pass --chromium PATH")


def screenshot(binary: str, html: Path, png: Path, size: tuple[int, int], profile: Path) -> None:
    cmd = [binary, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
           f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", html.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not png.is_file():
        sys.exit(f"chromium failed on {html}:\n{done.stderr[-2000:]}")


def sections(page: str) -> dict[str, str]:
    """Section id -> the section's HTML (sections do not nest); 'header' -> the page's title block."""
    found = {m.group(1): m.group(0) for m in re.finditer(r'<section id="([^"]+)"[^>]*>.*?</section>', page, re.S)}
    if header := re.search(r"<header>.*?</header>", page, re.S):
        found["header"] = header.group(0)
    return found


def keep_figures(section: str, limit: int | None) -> str:
    """The section with its first ``limit`` figures only."""
    if limit is None:
        return section
    figures = list(re.finditer(r"<figure\b.*?</figure>", section, re.S))
    if len(figures) <= limit:
        return section
    return section[:figures[limit].start()] + section[figures[-1].end():]


def page_of(page: str, parts: list[str], open_details: bool) -> str:
    """The report page with only ``parts`` in its body (the same styles)."""
    head = page[:page.index("<body")]
    body = "\n".join(parts)
    if open_details:
        body = body.replace("<details ", "<details open ")
    return f'{head}<body data-images-ok="pending">\n{body}\n</body>\n</html>\n'


def crop(png: Path, margin: int = 24) -> Image.Image:
    """The screenshot cut to its content (full width), with ``margin`` pixels above and below."""
    image = Image.open(png).convert("RGB")
    grey = image.convert("L").point(lambda v: 255 if v < 245 else 0)
    box = grey.getbbox()
    if box is None:
        return image
    return image.crop((0, max(0, box[1] - margin), image.width, min(image.height, box[3] + margin)))


def save_small(image: Image.Image, out: Path, max_kb: int) -> int:
    """Save as an optimised palette PNG, fewer colours and then a smaller scale until under ``max_kb``."""
    scale = 1.0
    while True:
        for colours in (256, 128, 64):
            scaled = image if scale == 1.0 else image.resize(
                (round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
            scaled.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
            size = out.stat().st_size
            if size <= max_kb * 1024:
                return size
        if scale < 0.5:
            return size
        scale *= 0.85


def run_quickstart(tmp: Path) -> Path:
    exe = shutil.which("collapse-sim")
    cmd = [exe] if exe else [sys.executable, "-c", "import sys; from collapse_sim.cli import main; sys.exit(main())"]
    print("running scenarios/quickstart.yaml (a few minutes) ...", flush=True)
    subprocess.run([*cmd, "run", str(REPO / "scenarios" / "quickstart.yaml"), "--out", str(tmp / "runs")],
                   check=True, cwd=REPO)
    return tmp / "runs" / "quickstart"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="an existing run directory (default: run scenarios/quickstart.yaml)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs" / "img", help="where the PNGs go (docs/img)")
    parser.add_argument("--chromium", help="the Chromium binary (default: found on PATH)")
    parser.add_argument("--max-kb", type=int, default=250, help="largest PNG size in KiB (default 250)")
    args = parser.parse_args(argv)
    binary = chromium_binary(args.chromium)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    from collapse_sim.report import build_report

    with tempfile.TemporaryDirectory(prefix="report-shots-") as name:
        tmp = Path(name)
        run_dir = args.run or run_quickstart(tmp)
        result = build_report([run_dir], tmp / "report.html")
        print(f"report built in {result.seconds:.1f} s", flush=True)
        # the page shows the run directory's absolute path: show where the getting-started command puts it
        page = result.html.read_text().replace(str(Path(run_dir).resolve()), f"runs/{Path(run_dir).name}")
        result.html.write_text(page)
        found = sections(page)
        shots = [("", None, *FIRST_SCREEN)]
        for suffix, ids, limit, open_details in SHOTS:
            parts = [keep_figures(found[i], limit) for i in ids if i in found]
            if parts:
                path = tmp / f"report-{suffix}.html"
                path.write_text(page_of(page, parts, open_details))
                shots.append((f"-{suffix}", path, WIDTH, 8000))
        for suffix, html, width, height in shots:
            raw = tmp / f"shot{suffix}.png"
            screenshot(binary, html or result.html, raw, (width, height), tmp / "profile")
            out = args.out_dir / f"report{suffix}.png"
            image = Image.open(raw).convert("RGB") if html is None else crop(raw)
            size = save_small(image, out, args.max_kb)
            print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out} "
                  f"({image.width} x {image.height}, {size // 1024} KiB)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
