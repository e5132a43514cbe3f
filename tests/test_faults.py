"""The training loop's workdir (``jaxml.train.checkpoint``, ``workdir``, ``loop``): checkpoints that are never bad
(no non-finite state saved; a damaged step named, moved aside, the run falling back to the one before), the
stored config, the lock, a torn metrics line."""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxml.train import config as config_lib
from jaxml.train import train_and_evaluate
from jaxml.train.workdir import WorkdirBusyError, WorkdirLock
from tests import helpers


def blobs_config(**train):
    """40 SGD steps of an 8-wide MLP on 256 blobs, a checkpoint every 10."""
    return helpers.blobs_config(model={"widths": (8,)}, data={"eval_batch_size": 128, "train_size": 256,
                                                              "test_size": 128},
                                optimizer={"name": "sgd", "lr": 0.1},
                                **{"num_steps": 40, "log_every": 10, "checkpoint_every": 10, "keep_checkpoints": 3,
                                   **train})


def records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def final_sha(final):
    return final["test"]["params_sha256"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """sha of the 40-step run and of the same run extended to 60 steps without a fault."""
    root = tmp_path_factory.mktemp("clean")
    sha40 = final_sha(train_and_evaluate(blobs_config(), str(root / "a")).final)
    sha60 = final_sha(train_and_evaluate(blobs_config(num_steps=60), str(root / "b")).final)
    return sha40, sha60


def extend(workdir):
    return train_and_evaluate(blobs_config(num_steps=60), str(workdir), allow_config_change=("train.num_steps",)).final


# --------------------------------------------------------------------------- the NaN guard never saves NaN


@pytest.mark.slow
def test_an_update_that_makes_the_parameters_nan_is_never_saved(tmp_path, uninterrupted):
    """lr = inf: every loss is computed before its update and is finite at the step that breaks the parameters,
    so the guard checks the parameters themselves: the broken step is never saved and a resume with a good lr
    ends as the uninterrupted run."""
    train_and_evaluate(blobs_config(num_steps=20), str(tmp_path))
    broken = blobs_config(num_steps=40, checkpoint_every=1)        # a checkpoint right after the breaking update
    broken.optimizer.lr = float("inf")
    with pytest.raises(FloatingPointError, match=r"step 21 is not finite .*last good checkpoint, step 20"):
        train_and_evaluate(broken, str(tmp_path), allow_config_change=("train.num_steps", "optimizer.lr"))
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "20"]
    # Resumed with the good lr, the run continues from step 20 and ends as if nothing happened.
    final = train_and_evaluate(blobs_config(), str(tmp_path), allow_config_change=("optimizer.lr",)).final
    assert final_sha(final) == uninterrupted[0]


def test_with_no_checkpoint_yet_the_message_says_so(tmp_path):
    c = blobs_config(checkpoint_every=1)
    c.optimizer.lr = float("inf")
    with pytest.raises(FloatingPointError, match="step 1 is not finite.*No checkpoint has been written"):
        train_and_evaluate(c, str(tmp_path))
    assert not os.path.exists(tmp_path / "checkpoints" / "1")


# --------------------------------------------------------------------------- damaged checkpoints


def _data_files(step_dir):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs
                  if os.path.getsize(os.path.join(d, f)) > 64 and "/d/" in os.path.join(d, f))


def flip_bytes(step_dir, n, seed=0):
    rng = np.random.default_rng(seed)
    for path in _data_files(step_dir)[:1]:
        data = bytearray(open(path, "rb").read())
        for i in rng.choice(len(data), n, replace=False):
            data[i] ^= 1 << int(rng.integers(8))
        open(path, "wb").write(bytes(data))


def truncate(step_dir):
    path = _data_files(step_dir)[0]
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def remove_metadata(step_dir):
    os.remove(os.path.join(step_dir, "_CHECKPOINT_METADATA"))


def empty(step_dir):
    shutil.rmtree(step_dir)
    os.makedirs(step_dir)


@pytest.mark.parametrize("damage", [lambda d: flip_bytes(d, 1),
                                    pytest.param(lambda d: flip_bytes(d, 64, seed=1), marks=pytest.mark.slow),
                                    pytest.param(truncate, marks=pytest.mark.slow),
                                    pytest.param(empty, marks=pytest.mark.slow)],
                         ids=["one_bit", "64_bytes", "truncated", "emptied"])
@pytest.mark.slow
def test_a_damaged_newest_step_is_named_moved_aside_and_the_run_falls_back(tmp_path, uninterrupted, damage,
                                                                            capsys):
    train_and_evaluate(blobs_config(), str(tmp_path))
    damage(str(tmp_path / "checkpoints" / "40"))
    final = extend(tmp_path)                        # resumes from step 30, the newest good one
    assert final_sha(final) == uninterrupted[1]
    err = capsys.readouterr().err
    assert "checkpoint step 40" in err and "moved it aside" in err
    assert os.path.isdir(tmp_path / "checkpoints-damaged" / "40")          # never deleted


@pytest.mark.slow
def test_a_step_without_its_metadata_file_still_verifies_and_resumes(tmp_path, uninterrupted, capsys):
    """Orbax restores a step whose _CHECKPOINT_METADATA is gone; the digest proves its state intact."""
    train_and_evaluate(blobs_config(), str(tmp_path))
    remove_metadata(str(tmp_path / "checkpoints" / "40"))
    assert final_sha(extend(tmp_path)) == uninterrupted[1]
    assert "moved it aside" not in capsys.readouterr().err


@pytest.mark.slow
def test_every_step_damaged_starts_again_from_scratch_saying_so(tmp_path, uninterrupted, capsys):
    train_and_evaluate(blobs_config(), str(tmp_path))
    for step in os.listdir(tmp_path / "checkpoints"):
        empty(str(tmp_path / "checkpoints" / step))
    assert final_sha(extend(tmp_path)) == uninterrupted[1]
    assert capsys.readouterr().err.count("moved it aside") == 3


# --------------------------------------------------------------------------- the workdir: config, lock, log


def test_resuming_with_another_config_is_refused_field_by_field(tmp_path):
    train_and_evaluate(blobs_config(num_steps=20), str(tmp_path))
    changed = blobs_config(num_steps=20)
    changed.optimizer.lr, changed.model.widths = 0.5, (16,)
    with pytest.raises(config_lib.ConfigError, match=r"config.model.widths: \[8\] -> \[16\]\).*new --workdir"):
        train_and_evaluate(changed, str(tmp_path))
    changed.model.widths = (8,)
    with pytest.raises(config_lib.ConfigError, match=r"optimizer.lr: 0.1 -> 0.5.*allow_config_change=optimizer.lr"):
        train_and_evaluate(changed, str(tmp_path))
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["optimizer"]["lr"] == 0.1                      # the stored config is untouched


@pytest.mark.slow
def test_a_finished_run_run_again_writes_nothing(tmp_path, caplog):
    first = train_and_evaluate(blobs_config(), str(tmp_path))
    before = open(tmp_path / "metrics.jsonl").read()
    again = train_and_evaluate(blobs_config(), str(tmp_path))
    assert again.final == first.final and open(tmp_path / "metrics.jsonl").read() == before
    assert again.params_sha256() == first.params_sha256()
    assert "already finished at step 40" in caplog.text


@pytest.mark.slow
def test_a_torn_last_line_is_dropped_on_resume(tmp_path, uninterrupted, capsys):
    train_and_evaluate(blobs_config(), str(tmp_path))
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 41, "split": "tra')                             # killed while writing
    final = extend(tmp_path)
    assert final_sha(final) == uninterrupted[1]
    assert all(r["step"] <= 60 for r in records(tmp_path))
    assert "dropping a torn last line" in capsys.readouterr().err


def test_a_second_run_in_a_busy_workdir_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys):
    with WorkdirLock(str(tmp_path)):
        with pytest.raises(WorkdirBusyError, match=rf"in use by pid {os.getpid()}"):
            train_and_evaluate(blobs_config(num_steps=10), str(tmp_path))
    assert not (tmp_path / "LOCK").exists()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = child.pid                                   # a pid that no longer runs
    with open(tmp_path / "LOCK", "w") as f:
        json.dump({"pid": dead, "host": socket.gethostname(), "started": "earlier"}, f)
    train_and_evaluate(blobs_config(num_steps=10), str(tmp_path))
    assert f"stale lock {tmp_path}/LOCK of pid {dead}" in capsys.readouterr().err
    assert not (tmp_path / "LOCK").exists()
