"""The loop's progress output: a tqdm bar on a terminal, one line every ``log_every`` steps on any other
stream (a log file, a pipe), with the loss the loop sets right after the step."""
import io
import re

import pytest

from jaxml.train import periodic, progress
from jaxml.train.config import base_config


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def drive(bar, start, total, log_every):
    """What run_loop does: update each step, then set the loss at every log step and the last one."""
    for step in range(start + 1, total + 1):
        bar.update(1)
        if step % log_every == 0 or step == total:
            bar.set_postfix(loss=f"{1 / step:.4g}")
    bar.close()


@pytest.mark.parametrize("start,total,every", [(0, 10, 4), (6, 10, 4), (0, 12, 4), (0, 3, 5)])
def test_off_a_terminal_one_line_every_log_every_steps(start, total, every):
    c = base_config()
    c.train.log_every = every
    out = io.StringIO()
    bar = periodic.progress_bar(c, total, start, "train", file=out)
    assert isinstance(bar, progress.LineProgress)
    drive(bar, start, total, every)
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text                     # no bar frames, no cursor codes
    want = sorted({s for s in range(start + 1, total + 1) if s % every == 0} | {total})
    lines = text.splitlines()
    assert [int(re.match(r"train: step (\d+)/", line).group(1)) for line in lines] == want
    for line, step in zip(lines, want):
        assert line.startswith(f"train: step {step}/{total} ({100 * step / total:.0f}%), ")
        assert line.endswith(f", loss={1 / step:.4g}")                # the loss of that very step


def test_on_a_terminal_a_tqdm_bar():
    from tqdm import tqdm
    c = base_config()
    out = FakeTerminal()
    bar = periodic.progress_bar(c, 5, 0, "train", file=out)
    assert isinstance(bar, tqdm)
    drive(bar, 0, 5, 100)
    assert "\r" in out.getvalue() and "5/5" in out.getvalue()


def test_no_bar_when_switched_off():
    c = base_config()
    c.train.progress_bar = False
    assert periodic.progress_bar(c, 5, 0, "train", file=FakeTerminal()) is None


def test_every_must_be_positive():
    with pytest.raises(ValueError, match="every must be a positive number of steps, got 0"):
        progress.LineProgress(10, every=0, file=io.StringIO())
