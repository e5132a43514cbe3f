"""A workdir never loses a run: a config change is refused or resumes, never mistaken for damage.

Damage is decided by integrity (readability, digest); a config that builds another state is refused before
anything is written, and the refusal only advises ``--allow_config_change`` for fields that can resume. Each test
failed on the code before this sweep (issue #32, bad cases 1-3 and the workdir's poor cases).
"""
import errno
import hashlib
import json
import logging
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import checkpoint as ckpt_lib
from jaxml.train import config as config_lib
from jaxml.train import train_and_evaluate
from tests import helpers


def blobs_config(**train):
    return helpers.blobs_config(model={"widths": (8,)},
                                data={"batch_size": 32, "eval_batch_size": 128, "train_size": 256, "test_size": 128},
                                optimizer={"name": "sgd", "lr": 0.1},
                                **{"num_steps": 20, "log_every": 10, "checkpoint_every": 10, "keep_checkpoints": 3,
                                   **train})


def snapshot(root) -> dict:
    """{relative path: sha256 of its bytes} of every file under ``root`` (directories as None)."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), root)] = None
        for name in files:
            with open(os.path.join(d, name), "rb") as f:
                out[os.path.relpath(os.path.join(d, name), root)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 20-step run (checkpoints 10 and 20) and its final test record; tests copy it."""
    root = tmp_path_factory.mktemp("finished") / "run"
    final = train_and_evaluate(blobs_config(), str(root)).final
    return root, final


@pytest.fixture
def workdir(finished, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(finished[0], path)
    return path


# --------------------------------------------------------------------------- bad cases 1-3


def test_an_allowed_structural_change_is_refused_before_anything_is_written(workdir):
    """Bad case 1: `--allow_config_change=model.widths` with a new width moved every intact checkpoint to
    checkpoints-damaged/, restarted at step 0 and overwrote metrics.jsonl and config.json."""
    before = snapshot(workdir)
    wider = blobs_config()
    wider.model.widths = (16,)
    with pytest.raises(config_lib.ConfigError, match=r"config.model.widths: \[8\] -> \[16\].*use a new --workdir") as e:
        train_and_evaluate(wider, str(workdir), allow_config_change=("model.widths",))
    assert "allow_config_change" not in str(e.value)
    assert snapshot(workdir) == before
    assert not os.path.exists(str(workdir) + "/checkpoints-damaged")


def test_following_the_refusal_never_replaces_the_run(workdir):
    """Bad case 2: the refusal listed every differing field after `--allow_config_change=`; running exactly
    that replaced the stored run by another model on other data."""
    before = snapshot(workdir)
    other = blobs_config()
    other.model.widths, other.data.train_size, other.seed = (4, 4), 512, 3
    other.optimizer.lr = 0.2
    with pytest.raises(config_lib.ConfigError) as refused:
        train_and_evaluate(other, str(workdir))
    message = str(refused.value)
    assert "allow_config_change" not in message and "use a new --workdir" in message
    for field in ("model.widths", "data.train_size", "seed"):
        assert f"config.{field}:" in message
    everything = ("model.widths", "data.train_size", "seed", "optimizer.lr")
    with pytest.raises(config_lib.ConfigError, match="use a new --workdir"):
        train_and_evaluate(other, str(workdir), allow_config_change=everything)
    assert snapshot(workdir) == before


def test_a_resumable_field_is_advised_and_then_resumes(workdir, finished):
    """Only fields that can resume are advised; following that advice continues the same run."""
    longer = blobs_config(num_steps=30)
    with pytest.raises(config_lib.ConfigError, match=r"--allow_config_change=train.num_steps; or use a new"):
        train_and_evaluate(longer, str(workdir))
    final = train_and_evaluate(longer, str(workdir), allow_config_change=("train.num_steps",)).final
    reference = train_and_evaluate(blobs_config(num_steps=30), None).final
    assert final["test"]["params_sha256"] == reference["test"]["params_sha256"]
    with open(workdir / "config.json") as f:
        assert json.load(f)["train"]["num_steps"] == 30


def test_an_allowed_field_that_changes_the_state_structure_is_refused(workdir):
    """optimizer.grad_clip may change, but 0 -> 1 adds a clipping stage to the optimizer state: the stored
    state cannot resume under it, and it is not damage either."""
    before = snapshot(workdir)
    clipped = blobs_config(num_steps=30)
    clipped.optimizer.grad_clip = 1.0
    with pytest.raises(ckpt_lib.IncompatibleCheckpointError, match=r"opt_state.*use a new --workdir"):
        train_and_evaluate(clipped, str(workdir), allow_config_change=("optimizer.grad_clip", "train.num_steps"))
    assert snapshot(workdir) == before


def test_a_checkpoint_of_another_structure_is_not_damage(tmp_path):
    """The checkpointer itself: a state of another shape is refused, and the step stays where it is."""
    ckpt = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
    ckpt.save(5, {"w": jnp.arange(3.0)}, {})
    with pytest.raises(ckpt_lib.IncompatibleCheckpointError, match=r"w: stored shape \(3,\) float32, this config "
                                                                     r"builds shape \(4,\) float32"):
        ckpt.restore_latest_good({"w": jnp.zeros(4)})
    state, _, step = ckpt.restore_latest_good({"w": jnp.zeros(3)})
    ckpt.close()
    assert step == 5 and np.array_equal(np.asarray(state["w"]), np.arange(3.0))
    assert not os.path.exists(str(tmp_path / "checkpoints-damaged"))


def test_moving_a_step_aside_twice_keeps_both(tmp_path):
    """Bad case 3: `_move_aside` removed an earlier `checkpoints-damaged/<step>` before moving a new one there."""
    ckpt = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
    for marker in ("first", "second"):
        ckpt.save(7, {"w": jnp.arange(3.0)}, {})
        with open(tmp_path / "checkpoints" / "7" / "marker", "w") as f:
            f.write(marker)
        ckpt._move_aside(7, "test")
    ckpt.close()
    damaged = tmp_path / "checkpoints-damaged"
    assert sorted(os.listdir(damaged)) == ["7", "7.1"]
    assert [open(damaged / d / "marker").read() for d in ("7", "7.1")] == ["first", "second"]


# --------------------------------------------------------------------------- the stored config


def test_a_corrupt_config_json_is_named_with_what_to_do(workdir):
    with open(workdir / "config.json", "w") as f:
        f.write('{"seed": 0, "model": ')
    with pytest.raises(config_lib.ConfigError, match=rf"{workdir}/config.json is not a readable JSON config .*"
                                                     "restore it .* or use a new --workdir"):
        train_and_evaluate(blobs_config(), str(workdir))


def test_a_deleted_config_json_with_checkpoints_is_refused(workdir):
    """It silently bypassed the guard: any config then 'resumed' the stored checkpoints."""
    os.remove(workdir / "config.json")
    before = snapshot(workdir)
    with pytest.raises(config_lib.ConfigError, match=r"holds checkpoints \(steps 10, 20\) but no config.json"):
        train_and_evaluate(blobs_config(num_steps=30), str(workdir))
    assert snapshot(workdir) == before


def test_after_a_nan_stop_without_a_checkpoint_a_lower_lr_is_accepted(tmp_path):
    """Nothing to resume: the retry with a lower lr used to be refused for changing optimizer.lr."""
    broken = blobs_config(checkpoint_every=0)
    broken.optimizer.lr = float("inf")
    with pytest.raises(FloatingPointError, match="No checkpoint has been written"):
        train_and_evaluate(broken, str(tmp_path))
    final = train_and_evaluate(blobs_config(checkpoint_every=0), str(tmp_path)).final
    assert final["test"]["params_sha256"] == train_and_evaluate(blobs_config(), None).final["test"]["params_sha256"]


def test_a_file_named_checkpoints_is_refused_at_the_door(tmp_path):
    (tmp_path / "checkpoints").write_text("not a directory")
    with pytest.raises(config_lib.ConfigError, match=r"checkpoints exists and is not a directory"):
        train_and_evaluate(blobs_config(), str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["checkpoints"]            # nothing written, not even config.json


# --------------------------------------------------------------------------- checkpoints: integrity, noise


def _drop_digest(step_dir):
    path = os.path.join(step_dir, "meta", "metadata")
    with open(path) as f:
        meta = json.load(f)
    del meta["state_sha256"]
    with open(path, "w") as f:
        json.dump(meta, f)


def test_a_checkpoint_without_its_digest_is_damaged_not_trusted(workdir, capsys):
    _drop_digest(str(workdir / "checkpoints" / "20"))
    final = train_and_evaluate(blobs_config(num_steps=30), str(workdir), allow_config_change=("train.num_steps",)).final
    assert "checkpoint step 20" in capsys.readouterr().err
    assert os.path.isdir(str(workdir) + "-damaged") is False
    assert os.path.isdir(workdir / "checkpoints-damaged" / "20")
    reference = train_and_evaluate(blobs_config(num_steps=30), None).final
    assert final["test"]["params_sha256"] == reference["test"]["params_sha256"]


def test_a_damaged_step_is_one_line_and_its_error_goes_to_errors_log(workdir, capsys, caplog):
    """The fallback printed 69-1,255 lines of orbax/TensorStore/asyncio logging; now one line per step."""
    shutil.rmtree(workdir / "checkpoints" / "20")
    os.makedirs(workdir / "checkpoints" / "20")                       # an emptied step
    with caplog.at_level(logging.DEBUG):
        train_and_evaluate(blobs_config(num_steps=30), str(workdir), allow_config_change=("train.num_steps",))
    noisy = [r for r in caplog.records if r.name.split(".")[0] in ("absl", "orbax", "tensorstore", "asyncio")
             and r.levelno >= logging.WARNING]
    assert noisy == []
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "checkpoint step 20" in err[0] and "moved it aside" in err[0]
    assert "restoring step 20" in (workdir / "errors.log").read_text()


# --------------------------------------------------------------------------- the workdir during a run


def test_a_workdir_deleted_during_the_run_stops_it_in_one_line(tmp_path, monkeypatch):
    """Orbax recreated the deleted directory at the next save, and the run went on writing into it."""
    original = ckpt_lib.Checkpointer.save

    def save_then_delete(self, step, *args, **kwargs):
        original(self, step, *args, **kwargs)
        shutil.rmtree(tmp_path / "run")

    monkeypatch.setattr(ckpt_lib.Checkpointer, "save", save_then_delete)
    gone = r"(run|checkpoints) has gone during the run \(its workdir was deleted or moved\)"
    with pytest.raises(FileNotFoundError, match=gone):
        train_and_evaluate(blobs_config(log_every=100), str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "checkpoints" / "20")


def test_a_full_disk_is_one_line_naming_the_directory(tmp_path, monkeypatch):
    ckpt = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))

    def full(*args, **kwargs):
        raise ValueError("Error writing local file: [OS error 28: No space left on device]")

    monkeypatch.setattr(ckpt.manager, "save", full)
    with pytest.raises(OSError, match=rf"no space left on the device of {tmp_path}/checkpoints: step 3 was not "
                                      "saved") as e:
        ckpt.save(3, {"w": jnp.arange(3.0)}, {})
    assert e.value.errno == errno.ENOSPC and "\n" not in str(e.value)
    assert "No space left on device" in (tmp_path / "errors.log").read_text()


# --------------------------------------------------------------------------- records after a resume


def test_the_first_train_record_after_an_off_boundary_resume_says_its_window(tmp_path):
    """Poor case: resumed at step 13 with log_every=10, the record at step 20 averaged steps 14-20 only and said
    nothing. Each train record now carries ``steps_in_window``, and the record's loss is the mean of exactly
    those steps' losses (an uninterrupted run logging every step gives them)."""
    train_and_evaluate(blobs_config(num_steps=13), str(tmp_path))                     # checkpoints at 10 and 13
    resumed = train_and_evaluate(blobs_config(num_steps=30), str(tmp_path), allow_config_change=("train.num_steps",))
    train = {r["step"]: r for r in resumed.history if r["split"] == "train" and "loss" in r}
    assert {s: r["steps_in_window"] for s, r in train.items()} == {10: 10, 13: 3, 20: 7, 30: 10}
    every_step = [r for r in train_and_evaluate(blobs_config(num_steps=30, log_every=1), None).history
                  if r["split"] == "train" and "loss" in r]
    assert [r["steps_in_window"] for r in every_step] == [1] * 30
    per_step = {r["step"]: r["loss"] for r in every_step}
    for step, rec in train.items():
        window = range(step - rec["steps_in_window"] + 1, step + 1)
        assert rec["loss"] == pytest.approx(np.mean([per_step[s] for s in window]), rel=1e-5)


def test_a_model_field_newer_than_the_stored_config_at_its_default_resumes(workdir, finished):
    """A workdir written before ``model.remat`` existed resumes under a config that sets it to the model's
    default (False); set to True it is a change of the model and refused."""
    path = workdir / "config.json"
    stored = json.loads(path.read_text())
    stored["model"].pop("remat", None)
    path.write_text(json.dumps(stored))
    same = blobs_config()
    same.model.remat = False
    final = train_and_evaluate(same, str(workdir)).final
    assert final["test"]["params_sha256"] == finished[1]["test"]["params_sha256"]
    same.model.remat = True
    with pytest.raises(config_lib.ConfigError, match=r"config.model.remat: (None|False) -> True.*use a new --workdir"):
        train_and_evaluate(same, str(workdir))
