"""Run by tests/test_cluster.py inside a local cluster: K-means over the global data mesh, result printed
as JSON by process 0. Not a test module itself."""
import json

import jax
import numpy as np

from jaxml import parallel
from jaxml.kmeans import kmeans


def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((4001, 6)) + rng.integers(0, 5, (4001, 1)) * 4).astype(np.float32)


if __name__ == "__main__":
    parallel.initialize_distributed(timeout_s=60)
    x = data()
    r = kmeans(x, 5, init=x[:5], max_iter=50, mesh=parallel.data_mesh())
    if jax.process_index() == 0:
        print(json.dumps({"inertia": float(parallel.host_local_copy(r.inertia)),
                          "centers": np.asarray(parallel.host_local_copy(r.centers)).tolist()}), flush=True)
