"""Training progress for a person: a tqdm bar on a terminal or in a notebook, plain log lines anywhere else.

Off a terminal (output redirected to a file, a CI log, the pipe of launch/local_cluster.py) a tqdm bar writes a
frame at every refresh into the log. ``LineProgress`` has the bar's ``update`` / ``set_postfix`` / ``close``
and instead prints one line every ``every`` steps and one at the end:

    train: step 400/1000 (40%), 251.3 step/s, 1.6 s, loss=0.0674
"""
from __future__ import annotations

import sys
import time


def in_notebook() -> bool:
    """True inside a Jupyter / Colab kernel (its output is a widget, not a terminal)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and hasattr(shell, "kernel")


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):        # no isatty, or a closed stream
        return False


class LineProgress:
    """A progress bar for logs: ``update(n)`` counts steps; the line of every ``every``-th step is printed at the
    next call, so a ``set_postfix`` right after the ``update`` (the loop's loss) is in it; ``close`` prints the
    last step when it has not been printed."""

    def __init__(self, total: int, initial: int = 0, desc: str = "", *, every: int, file=None):
        if every <= 0:
            raise ValueError(f"every must be a positive number of steps, got {every!r}")
        self.total, self.n, self.desc, self.every = int(total), int(initial), desc, int(every)
        self.file = sys.stderr if file is None else file
        self.postfix: dict = {}
        self._start = self._last_t = time.monotonic()
        self._last_n, self._printed, self._pending = self.n, self.n, False

    def update(self, n: int = 1) -> None:
        if self._pending:
            self._print()
        before, self.n = self.n, self.n + int(n)
        self._pending = self.n // self.every > before // self.every

    def set_postfix(self, **values) -> None:
        self.postfix.update(values)
        if self._pending:
            self._print()

    def close(self) -> None:
        if self._pending or self._printed != self.n:
            self._print()

    def _print(self) -> None:
        now = time.monotonic()
        rate = (self.n - self._last_n) / max(now - self._last_t, 1e-9)
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        extra = "".join(f", {k}={v}" for k, v in self.postfix.items())
        print(f"{self.desc}: step {self.n}/{self.total}{pct}, {rate:.1f} step/s, {now - self._start:.1f} s{extra}",
              file=self.file, flush=True)
        self._last_t, self._last_n, self._printed, self._pending = now, self.n, self.n, False


def make(total: int, initial: int, desc: str, *, every: int, file=None):
    """A tqdm bar when ``file`` (default stderr, where tqdm writes) is a terminal or in a notebook, else a
    ``LineProgress`` printing every ``every`` steps."""
    if in_notebook():
        from tqdm.auto import tqdm
        return tqdm(total=total, initial=initial, desc=desc, unit="step")
    file = sys.stderr if file is None else file
    if is_terminal(file):
        from tqdm import tqdm
        return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, file=file)
    return LineProgress(total, initial, desc, every=every, file=file)
