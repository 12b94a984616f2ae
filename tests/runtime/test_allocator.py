"""collapse_sim.runtime.allocator: with keep_heap() freed blocks are reused instead of faulted back in."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="keep_heap tunes glibc's malloc")

# a training step's pattern: ~100 MB in blocks of a few MB allocated, then all freed, again and
# again (after one large block that lifts glibc's dynamic thresholds to their ceiling)
PROGRAM = r"""
import json, resource, sys
import numpy as np
from collapse_sim.runtime.allocator import keep_heap
state = keep_heap() if sys.argv[1] == "keep" else None
np.ones(4_000_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    blocks = [np.ones(300_000 + 1000 * i) for i in range(40)]
    del blocks
print(json.dumps({"state": state, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _run(mode: str, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], env={**clean, **env}, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def test_keep_heap_removes_the_page_faults_of_reallocated_blocks():
    default, kept = _run("default"), _run("keep")
    assert kept["state"] is True
    # 20 rounds of ~100 MB: glibc's defaults return what exceeds their 64 MB trim ceiling and
    # fault it back in; kept, the same memory is reused
    assert default["faults"] > 100_000  # measured: ~330 k
    assert kept["faults"] < default["faults"] / 5  # measured: ~17 k (the first round)


def test_a_users_malloc_settings_win():
    assert _run("keep", MALLOC_ARENA_MAX="2")["state"] is False
