"""Input prefetch (config.train.prefetch): batches in step order and ahead of use, errors re-raised at their
step, no thread left behind, and a run bit-identical with and without."""
import threading
import time

import pytest

from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import train_and_evaluate
from jaxml.train.metrics_log import read_records
from jaxml.train.prefetch import Prefetcher
from jaxml.train.profiling import TIMING_FIELDS
from tests import helpers


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "jaxml-prefetch"]


def wait_for(cond, timeout=30.0):
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_batches_come_in_step_order(depth):
    with Prefetcher(lambda s: s * s, 5, 12, depth) as p:
        assert [p.get(s) for s in range(5, 12)] == [s * s for s in range(5, 12)]
    assert not prefetch_threads()


def test_the_next_batches_are_built_before_they_are_asked_for():
    calls = []
    with Prefetcher(lambda s: calls.append(s) or s, 0, 100, 2) as p:
        assert p.get(0) == 0
        wait_for(lambda: len(calls) >= 3)             # 1 and 2 queued (depth 2), 3 built and waiting for room
        assert calls[:3] == [0, 1, 2]
        assert p.get(1) == 1
    assert not prefetch_threads()


def test_an_error_building_a_batch_is_raised_at_its_step_and_the_thread_ends():
    def make(step):
        if step == 3:
            raise OSError("disk gone at step 3")
        return step
    p = Prefetcher(make, 0, 10, 2)
    assert [p.get(s) for s in range(3)] == [0, 1, 2]
    with pytest.raises(OSError, match="disk gone at step 3"):
        p.get(3)
    p.close()
    assert not prefetch_threads()


def test_close_with_a_full_queue_stops_the_producer():
    p = Prefetcher(lambda s: s, 0, 10 ** 6, 2)
    p.get(0)
    wait_for(lambda: p.queue.full())
    p.close()
    assert not prefetch_threads()


def test_out_of_order_request_is_an_error():
    with Prefetcher(lambda s: s, 0, 10, 1) as p, pytest.raises(RuntimeError, match="step 1, the next one built is"):
        p.get(1)


def blobs_config(prefetch, backend="none"):
    return helpers.blobs_config(model={"widths": (32, 16), "dropout": 0.2},
                                data={"batch_size": 64, "eval_batch_size": 64, "augment_shift": 0},
                                parallel={"backend": backend}, num_steps=24, log_every=4, eval_every=8,
                                checkpoint_every=8, prefetch=prefetch)


def records(workdir):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in read_records(workdir)]


@pytest.mark.parametrize("backend", ["none", "shard_map"])
def test_run_with_prefetch_is_bit_identical(tmp_path, backend):
    for depth in (0, 3):
        train_and_evaluate(blobs_config(depth, backend), str(tmp_path / str(depth)))
    with_, without = records(str(tmp_path / "3")), records(str(tmp_path / "0"))
    assert with_ == without and any("params_sha256" in r for r in with_)
    assert not prefetch_threads()


def test_early_stop_leaves_no_thread(tmp_path):
    c = blobs_config(2)
    c.train.num_steps, c.train.eval_splits = 400, ("test",)
    c.train.early_stopping.update({"metric": "loss", "split": "test", "patience": 1, "min_delta": 10.0})
    train_and_evaluate(c, str(tmp_path))
    assert max(r["step"] for r in read_records(str(tmp_path))) < 400      # it stopped early
    assert not prefetch_threads()


def test_negative_prefetch_is_a_config_error(tmp_path):
    with pytest.raises(config_lib.ConfigError, match=r"config\.train\.prefetch must be >= 0, got -1"):
        train_and_evaluate(blobs_config(-1), str(tmp_path))
    assert not any(tmp_path.iterdir())
