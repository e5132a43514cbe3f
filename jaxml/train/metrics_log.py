"""Metric records to ``<workdir>/metrics.jsonl`` (one JSON object a line: step, split, metrics) and
TensorBoard event files under ``<workdir>/tb/<split>``. Only process 0 writes. Each record is one ``write`` of
one whole line to a file opened for appending, so a killed run leaves at most a torn last line, which
``read_records`` drops with a warning. ``MetricsLog(None)`` writes no file: it keeps the records in memory (a run
without a workdir); ``history()`` returns the records either way."""
from __future__ import annotations

import json
import math
import os
import sys

import jax


class MetricsLog:
    def __init__(self, workdir: str | None, *, tensorboard: bool = True):
        self.path = None if workdir is None else os.path.join(workdir, "metrics.jsonl")
        self.enabled = workdir is not None and jax.process_index() == 0
        self._tb_root = os.path.join(workdir, "tb") if tensorboard and workdir is not None else None
        self._tb = {}
        self.memory: list[dict] | None = [] if workdir is None else None   # the records of a run without a workdir

    def history(self) -> list[dict]:
        """Every record of the run: ``metrics.jsonl`` (earlier sessions of a resumed run included), or the
        in-memory records of a run without a workdir."""
        if self.path is None:
            return list(self.memory)
        return read_records(os.path.dirname(self.path))

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (a resumed run rewrites what the killed run logged after its last
        checkpoint), atomically: the new file replaces the old one in one rename."""
        if not (self.enabled and os.path.exists(self.path)):
            return
        keep = [json.dumps(r) + "\n" for r in read_records(os.path.dirname(self.path)) if r.get("step", 0) <= step]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(keep)
        os.replace(tmp, self.path)

    def write(self, step: int, split: str, values: dict) -> dict:
        record = {"step": int(step), "split": split}
        record.update({k: _json_value(v) for k, v in values.items()})
        if self.memory is not None:
            self.memory.append(record)
        if not self.enabled:
            return record
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise FileNotFoundError(f"{os.path.dirname(self.path)} has gone during the run (its workdir was deleted "
                                    f"or moved); the record of step {step} cannot be written, stopping") from None
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)
        if self._tb_root is not None:
            if split not in self._tb:
                self._tb[split] = _summary_writer(os.path.join(self._tb_root, split))
            for k, v in record.items():
                if k not in ("step", "split") and isinstance(v, float) and math.isfinite(v):
                    self._tb[split].add_scalar(k, v, int(step))
            self._tb[split].flush()
        return record

    def close(self) -> None:
        for w in self._tb.values():
            w.close()


def _json_value(v):
    """Python ints stay ints (counts), other numbers (NumPy / JAX scalars included) become floats."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return float(v) if isinstance(v, float) or hasattr(v, "dtype") else v


def read_records(workdir: str) -> list[dict]:
    """The records of ``<workdir>/metrics.jsonl``; a torn last line (a run killed mid-write) is dropped with a
    warning, any other unreadable line fails naming the file and line."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [(i, line) for i, line in enumerate(f, 1) if line.strip()]
    records = []
    for j, (i, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if j == len(lines) - 1:
                print(f"jaxml: {path}:{i}: dropping a torn last line (a run was killed while writing it)",
                      file=sys.stderr)
                break
            raise ValueError(f"{path}:{i}: not a JSON record ({e}); fix or remove that line") from None
    return records


def _summary_writer(logdir: str):
    """A tensorboardX ``SummaryWriter``, imported on first use and with torch hidden while it imports: tensorboardX
    imports torch when it is installed only to accept torch tensors (jaxml logs floats), a slow import.
    (Not thread-safe: an ``import torch`` in another thread during these lines would fail.)"""
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None             # `import torch` raises ImportError; tensorboardX falls back
    try:
        from tensorboardX import SummaryWriter
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter(logdir)
