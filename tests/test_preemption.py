"""Preemption-safe runs (jaxml/train/preemption.py): a SIGTERM mid-run saves the step reached and the resumed run
ends bit-identical to one never stopped (in-process, through the launcher, and on a 2-process x 2-device cluster);
a second signal stops at once with the earlier checkpoints intact; ``checkpoint_every_s`` saves on the clock;
the handlers given back are exactly those found. The subprocess tests signal after a random number of records."""
import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from jaxml import data
from jaxml.cli import local_cluster
from jaxml.cli.common import load_config
from jaxml.train import loop, preemption
from jaxml.train.checkpoint import Checkpointer
from jaxml.train.config import ConfigError, validate
from jaxml.train.workdir import check_config

slow = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOBS = os.path.join(ROOT, "configs", "blobs_mlp.py")
PREEMPTED = "jaxml: preempted at step {}; checkpoint saved; resume with the same command"


def _config(**train):
    c = load_config(BLOBS)
    c.train.num_epochs, c.train.num_steps, c.train.checkpoint_every, c.train.progress_bar = 0, 40, 0, False
    c.train.eval_every, c.parallel.backend = 1000, "none"         # one device, evaluated at the end only
    c.train.update(train)
    return c


class Hooked:
    """A training source that runs ``hooks[step]()`` when the loop asks for that step's batch."""

    def __init__(self, source, hooks: dict):
        self.source, self.hooks, self.steps_per_epoch = source, hooks, source.steps_per_epoch

    def batch(self, step, **kw):
        if step in self.hooks:
            self.hooks[step]()
        return self.source.batch(step, **kw)


def _splits(config, hooks):
    splits = data.build(config)
    return splits._replace(train=Hooked(splits.train, hooks))


def _signal(sig=signal.SIGTERM):
    return lambda: os.kill(os.getpid(), sig)


def _sha(final: dict) -> str:
    return next(r["params_sha256"] for r in final.values() if "params_sha256" in r)


def _steps(workdir) -> list[int]:
    return sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())


def test_sigterm_saves_the_step_reached_and_resume_is_bit_identical(tmp_path):
    config = _config()
    reference = _sha(loop.train_and_evaluate(config, str(tmp_path / "ref"), splits=data.build(config)).final)
    k = random.Random(35).randrange(1, 38)          # the batch during which the signal arrives
    # what the process had before (a suite started from a background shell job inherits SIGINT ignored)
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with pytest.raises(preemption.Preempted) as e:
        loop.train_and_evaluate(config, str(tmp_path / "run"), splits=_splits(config, {k: _signal()}))
    assert f"jaxml: {e.value}" == PREEMPTED.format(k + 1) and e.value.exit_code == 75
    assert _steps(tmp_path / "run") == [k + 1]      # the step in progress finished, then saved
    assert {s: signal.getsignal(s) for s in before} == before             # handlers given back
    resumed = loop.train_and_evaluate(config, str(tmp_path / "run"), splits=data.build(config))
    assert _sha(resumed.final) == reference


def test_second_signal_stops_at_once_leaving_the_checkpoints_intact(tmp_path, monkeypatch):
    """The second signal lands while the preemption checkpoint is half written (a leftover temporary directory,
    as a real interrupted orbax write leaves): the run stops there; the resume starts from the step-10 checkpoint,
    moves nothing aside and ends bit-identical."""
    config = _config(checkpoint_every=10)
    reference = _sha(loop.train_and_evaluate(config, str(tmp_path / "ref"), splits=data.build(config)).final)
    save = Checkpointer.save

    def interrupted_save(self, step, *args, **kw):
        if step == 15:
            os.makedirs(os.path.join(self.directory, "15.orbax-checkpoint-tmp", "state"))
            open(os.path.join(self.directory, "15.orbax-checkpoint-tmp", "state", "half"), "wb").write(b"\0" * 7)
            os.kill(os.getpid(), signal.SIGTERM)
        return save(self, step, *args, **kw)
    monkeypatch.setattr(Checkpointer, "save", interrupted_save)
    with pytest.raises(preemption.Interrupted) as e:
        loop.train_and_evaluate(config, str(tmp_path / "run"), splits=_splits(config, {14: _signal()}))
    assert not isinstance(e.value, preemption.Preempted) and e.value.exit_code == 128 + signal.SIGTERM
    assert str(e.value) == "stopped at once on a second SIGTERM; the checkpoints already written are intact"
    assert _steps(tmp_path / "run") == [10]
    monkeypatch.setattr(Checkpointer, "save", save)
    resumed = loop.train_and_evaluate(config, str(tmp_path / "run"), splits=data.build(config))
    assert _sha(resumed.final) == reference
    assert not os.path.exists(tmp_path / "run" / "checkpoints-damaged")


def test_run_in_memory_is_not_watched_ctrl_c_raises_keyboard_interrupt():
    """Python's own Ctrl-C handler (installed here: a process started with SIGINT ignored has none) is left in
    place, so the signal raises KeyboardInterrupt where the run is."""
    config = _config()
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as e:
            loop.train_and_evaluate(config, None, splits=_splits(config, {5: _signal(signal.SIGINT)}))
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)
    assert type(e.value) is KeyboardInterrupt


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_checkpoint_every_s_saves_whichever_comes_first():
    clock = FakeClock()
    with preemption.Watch(5.0, clock=clock) as w:
        decisions = []
        for t, due in [(1, False), (5, False), (9, False), (10, False), (12, True), (16, False), (17, False)]:
            clock.t = t
            decisions.append(w.poll(0, due).save)
    assert decisions == [False, True, False, True, True, False, True]   # 5 s since the last save, or due


def test_checkpoint_every_s_in_a_run(tmp_path, monkeypatch):
    """A clock that advances 0.3 s per batch and a 1 s interval: saves at steps 4, 8, 12, ... (1.2 s, 2.4 s...) and
    the step-based ones (every 10) reset it; the end is saved too."""
    clock = FakeClock()
    monkeypatch.setattr(preemption.time, "monotonic", clock)
    config = _config(num_steps=20, checkpoint_every=10, checkpoint_every_s=1.0, keep_checkpoints=50)

    def tick():
        clock.t += 0.3
    loop.train_and_evaluate(config, str(tmp_path), splits=_splits(config, {s: tick for s in range(20)}))
    assert _steps(tmp_path) == [4, 8, 10, 14, 18, 20]


def test_the_launcher_knows_the_preempted_exit_code():
    assert local_cluster.PREEMPTED == preemption.EXIT_PREEMPTED == 75


def test_checkpoint_every_s_is_validated_and_may_change_on_resume(tmp_path):
    with pytest.raises(ConfigError, match=r"config.train.checkpoint_every_s must be >= 0, got -1.0"):
        validate(_config(checkpoint_every_s=-1.0))
    check_config(str(tmp_path), _config())
    check_config(str(tmp_path), _config(checkpoint_every_s=600.0))      # a runtime field: no refusal


def _native_handler(sig) -> int:
    """The handler address the kernel holds for ``sig`` (0: SIG_DFL, 1: SIG_IGN)."""
    buf = ctypes.create_string_buffer(512)
    assert ctypes.CDLL(None).sigaction(sig, None, buf) == 0
    return ctypes.c_size_t.from_buffer(buf).value


def test_watch_gives_back_a_native_handler_and_keeps_an_ignored_signal():
    """JAX's preemption notifier holds SIGTERM outside Python (here: a native SIG_IGN Python does not know of); an
    ignored SIGINT (a shell's background job) is left ignored."""
    libc = ctypes.CDLL(None)
    libc.signal.restype = ctypes.c_void_p
    libc.signal(signal.SIGTERM, ctypes.c_void_p(1))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with preemption.Watch() as w:
            assert _native_handler(signal.SIGTERM) not in (0, 1)
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN and not w.requested
        assert _native_handler(signal.SIGTERM) == 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


TRAIN = [sys.executable, os.path.join(ROOT, "launch", "train.py"), f"--config={BLOBS}",
         "--config.train.progress_bar=False", "--config.train.checkpoint_every=0", "--config.train.num_epochs=0",
         "--config.train.log_every=10"]


def _records(workdir) -> int:
    try:
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            return sum(1 for line in f if '"train"' in line)
    except FileNotFoundError:
        return 0


def _signal_after(proc, workdir, records: int, timeout_s: float = 150) -> None:
    """SIGTERM ``proc`` once ``workdir``'s metrics hold ``records`` train records (it is training)."""
    deadline = time.time() + timeout_s
    while _records(workdir) < records:
        assert proc.poll() is None, "the run ended before it was signalled"
        assert time.time() < deadline, "training never reached the step"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)


def _final_sha(workdir) -> str:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if "params_sha256" in line][-1]["params_sha256"]


@slow
@pytest.mark.timeout(300)
def test_launcher_sigterm_is_one_line_exit_75_and_resumes_bit_identical(tmp_path):
    cmd = TRAIN + ["--config.train.num_steps=3000"]
    ref = subprocess.run(cmd + [f"--workdir={tmp_path / 'ref'}"], capture_output=True, text=True, timeout=200)
    assert ref.returncode == 0, ref.stderr[-2000:]
    run = cmd + [f"--workdir={tmp_path / 'run'}"]
    proc = subprocess.Popen(run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _signal_after(proc, tmp_path / "run", random.Random(3).randrange(1, 100))
        err = proc.communicate(timeout=100)[1]
    finally:
        proc.kill()
    assert proc.returncode == preemption.EXIT_PREEMPTED, err[-2000:]
    last = err.strip().splitlines()[-1]
    step = _steps(tmp_path / "run")[-1]
    assert last == PREEMPTED.format(step) and "Traceback" not in err
    assert 10 <= step < 3000
    done = subprocess.run(run, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _final_sha(tmp_path / "run") == _final_sha(tmp_path / "ref")


@slow
@pytest.mark.timeout(400)
def test_two_process_cluster_agrees_on_the_stop_step_and_resumes_bit_identical(tmp_path):
    """SIGTERM to process 1 only: both processes (2 devices each) stop at the same step, a multiple of
    ``sync_every``, save once and exit 75; the cluster's resume ends bit-identical to its uninterrupted run.
    (tests/test_cluster.py signals the launcher, which forwards the signal to every process.)"""
    cmd = TRAIN + ["--config.train.num_steps=100", "--config.train.sync_every=5", "--config.train.eval_every=50"]

    def cluster(workdir, name):
        out = open(tmp_path / f"{name}.txt", "w")
        return local_cluster.start(cmd + [f"--workdir={workdir}"], 2, 2, stdout=out)
    procs = cluster(tmp_path / "ref", "ref")
    assert local_cluster.wait(procs, timeout=240) == 0, (tmp_path / "ref.txt").read_text()[-2000:]
    procs = cluster(tmp_path / "run", "run")
    try:
        _signal_after(procs[1], tmp_path / "run", random.Random(4).randrange(1, 8))
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        local_cluster.kill_all(procs)
    out = (tmp_path / "run.txt").read_text()
    assert codes == [75, 75], out[-3000:]
    step = _steps(tmp_path / "run")[-1]
    assert step % 5 == 0 and out.count(PREEMPTED.format(step)) == 2, out[-3000:]
    procs = cluster(tmp_path / "run", "resume")
    assert local_cluster.wait(procs, timeout=240) == 0, (tmp_path / "resume.txt").read_text()[-2000:]
    assert _final_sha(tmp_path / "run") == _final_sha(tmp_path / "ref")
