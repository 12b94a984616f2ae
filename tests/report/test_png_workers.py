"""Figures rendered in worker processes (``report.png_workers``): the same PNG as in-process, and
a report never waits on a worker that died or hangs."""
from __future__ import annotations

import os
import sys
import time

import pytest

from collapse_sim.report import figures, png_workers


def _figure(k: int):
    fig = figures.new_figure(4, 3)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [k, k + 1, k * k], label=f"line {k}")
    fig.legend(loc="outside upper center")
    return fig


def _here(k: int) -> str:
    return png_workers.data_uri(png_workers.png(_figure(k), figures.DPI, figures.RC))


def test_workers_render_the_same_png_as_this_process():
    with png_workers.parallel(workers=2):
        pending = [figures.to_data_uri(_figure(k)) for k in range(3)]
        assert all(isinstance(p, png_workers.Pending) for p in pending)
    assert [png_workers.resolved(p) for p in pending] == [_here(k) for k in range(3)]
    assert isinstance(figures.to_data_uri(_figure(0)), str)  # outside: rendered here


def _dies(*args):
    os._exit(3)


def _hangs(*args):
    time.sleep(3600)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs forked workers (they inherit the patch)")
@pytest.mark.parametrize("worker", [_dies, _hangs])
def test_a_dead_or_stuck_worker_costs_time_not_the_figure(monkeypatch, worker):
    monkeypatch.setattr(png_workers, "_png_of_pickle", worker)  # the forked workers inherit it
    monkeypatch.setattr(png_workers, "DEADLINE", 3.0)
    started = time.monotonic()
    with png_workers.parallel(workers=2, start_method="fork"):
        pending = figures.to_data_uri(_figure(1))
    assert png_workers.resolved(pending) == _here(1)
    assert time.monotonic() - started < 30


def test_a_figure_that_cannot_be_rendered_is_a_warning_not_the_end_of_the_report(tiny_run, tmp_path, monkeypatch):
    from collapse_sim.report.build import build_report

    def broken(png_bytes):
        raise ValueError("no PNG today")

    monkeypatch.setattr(png_workers, "data_uri", broken)  # fails after the worker, and when drawn here
    result = build_report([tiny_run[1]], tmp_path / "report.html")
    failed = [w for w in result.warnings if "could not be drawn" in w]
    assert failed and all("no PNG today" in w for w in failed)
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png" not in html and "not drawn because of an error" in html
