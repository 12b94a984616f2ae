"""PNG rendering of the report's figures in worker processes, while the next figures are drawn.

Why: matplotlib's part of ``savefig`` (constrained layout, text, the Agg raster) is about two
thirds of a report's build time and runs on one core. The figures are independent, so inside
:func:`parallel` each one is pickled to a small process pool and rendered there
(``benchmarks/bench_report.py``). On Linux, from a process with no other thread (the
``collapse-sim report`` command), the workers are forks of this process, started when the pool
opens, so they start with matplotlib loaded (a forkserver or spawned worker imports it first:
2-3 s before the first figure); they only unpickle and draw. Otherwise they come from a
forkserver (or are spawned), which copies no thread.
Outside :func:`parallel`, or where a worker fails, a figure is rendered in this process: the same
bytes either way."""
from __future__ import annotations

import base64
import contextlib
import io
import multiprocessing
import os
import pickle
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, wait

_pool: ProcessPoolExecutor | None = None
_pending: list = []  # the futures of the open pool

#: seconds the end of :func:`parallel` waits for the workers before it stops them and renders
#: what is left in this process (a figure takes well under a second)
DEADLINE = 120.0


def png(fig, dpi: int, rc: dict) -> bytes:
    """The PNG bytes of ``fig`` at ``dpi``, drawn under the rcParams ``rc``."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(rc):
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _png_of_pickle(blob: bytes, dpi: int, rc: dict) -> bytes:
    return png(pickle.loads(blob), dpi, rc)


def data_uri(png_bytes: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


class Pending:
    """A figure's data URI being rendered by a worker; :meth:`result` (after :func:`parallel`
    ended, or waiting for the worker inside it) gives it, drawn here if the worker did not."""

    def __init__(self, fig, dpi: int, rc: dict, future):
        self._fig, self._dpi, self._rc, self._future = fig, dpi, rc, future

    def result(self) -> str:
        try:
            return data_uri(self._future.result(timeout=0 if _pool is None else DEADLINE))
        except Exception:  # noqa: BLE001 - a failed, stopped or cancelled worker: draw it here instead
            return data_uri(png(self._fig, self._dpi, self._rc))


def submit(fig, dpi: int, rc: dict) -> str | Pending:
    """``fig``'s data URI: rendered by a worker inside :func:`parallel`, else here and now."""
    if _pool is not None:
        try:
            future = _pool.submit(_png_of_pickle, pickle.dumps(fig), dpi, rc)
            _pending.append(future)
            return Pending(fig, dpi, rc, future)
        except Exception:  # noqa: BLE001 - unpicklable figure or a broken pool: render here
            pass
    return data_uri(png(fig, dpi, rc))


def resolved(uri: str | Pending) -> str:
    return uri.result() if isinstance(uri, Pending) else uri


@contextlib.contextmanager
def parallel(workers: int | None = None, start_method: str | None = None) -> Iterator[None]:
    """Within: :func:`submit` hands figures to up to ``workers`` processes (default: the cores
    this process may use, at most 4; 1 or fewer renders in this process), started by
    ``start_method`` (default: as the module docstring says)."""
    global _pool
    if workers is None:
        workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4)
    if workers < 2 or _pool is not None:
        yield
        return
    # fork only a process without other threads (a library caller's, a notebook's may have some)
    method = start_method or ("fork" if sys.platform.startswith("linux") and threading.active_count() == 1
                              else "forkserver")
    if method not in multiprocessing.get_all_start_methods():
        method = "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":  # the server (one per process, started once) imports these for every worker
        context.set_forkserver_preload(["matplotlib.figure", "matplotlib.backends.backend_agg", __name__])
    _pool = ProcessPoolExecutor(workers, mp_context=context)
    for _ in range(workers):  # start them now, before this process makes threads or draws anything
        _pool.submit(int)
    try:
        yield
    finally:
        pool, _pool = _pool, None
        _, stuck = wait(_pending, timeout=DEADLINE)
        _pending.clear()
        if stuck:  # never hang a report on a worker: stop them; their figures are drawn here
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=not stuck, cancel_futures=True)
