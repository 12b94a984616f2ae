"""The per-epoch training record the torch model kinds keep: a list in memory and, when a path
is given, JSON lines written as each epoch ends (a run's train_log.jsonl can be followed live)."""
from __future__ import annotations

import json
import time
from pathlib import Path

#: the validation fields of an epoch without a validation split
NO_VALIDATION = dict(valid_loss=None, valid_rmse_e_meV_per_atom=None, valid_rmse_f_meV_per_A=None)


class EpochLog:
    """``with EpochLog(path) as log: ... log.add(...)``; ``log.history`` holds the records."""

    def __init__(self, path: Path | None):
        self.path = None if path is None else Path(path)
        self.history: list[dict] = []
        self._file = None

    def __enter__(self) -> EpochLog:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()

    def add(self, epoch: int, train_loss: float, lr: float, validation: dict | None, started: float) -> None:
        """One epoch: its number (from 1), mean training loss, learning rate, validation metrics
        (None: no validation split) and ``time.perf_counter()`` at its start."""
        record = {"epoch": epoch, "train_loss": train_loss, "lr": lr, **(validation or NO_VALIDATION),
                  "seconds": time.perf_counter() - started}
        self.history.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
