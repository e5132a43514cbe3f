"""Metric records to ``<workdir>/metrics.jsonl`` (one JSON object a line: step, split, metrics) and
TensorBoard event files under ``<workdir>/tb/<split>``. Only process 0 writes."""
from __future__ import annotations

import json
import math
import os

import jax


class MetricsLog:
    def __init__(self, workdir: str, *, tensorboard: bool = True):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.enabled = jax.process_index() == 0
        self._tb_root = os.path.join(workdir, "tb") if tensorboard else None
        self._tb = {}

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (a resumed run rewrites what the killed run logged after its last
        checkpoint), atomically: the new file replaces the old one in one rename."""
        if not (self.enabled and os.path.exists(self.path)):
            return
        with open(self.path) as f:
            keep = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= step]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(keep)
        os.replace(tmp, self.path)

    def write(self, step: int, split: str, values: dict) -> dict:
        record = {"step": int(step), "split": split}
        record.update({k: _json_value(v) for k, v in values.items()})
        if not self.enabled:
            return record
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb_root is not None:
            if split not in self._tb:
                from tensorboardX import SummaryWriter
                self._tb[split] = SummaryWriter(os.path.join(self._tb_root, split))
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
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
