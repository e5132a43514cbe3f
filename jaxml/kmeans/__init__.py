"""K-means as one jitted, shardable, vmappable program: k-means++, parallel restarts, automatic k, palettes.

    from jaxml.kmeans import kmeans
    result = kmeans(x, k=8, n_init=10)              # x: f32[n, d]; restarts run together (vmapped)
    result = kmeans(x, k=8, mesh=data_mesh())       # points split over devices, one psum per iteration

Modules: ``assign`` (blocked nearest-centre pass and per-cluster sums), ``lloyd`` (the while_loop,
empty-cluster re-seeding, and ``lloyd_batch``: many runs stepped as one batch that sheds finished runs),
``bounds`` (a single run through Hamerly's bounds: brute force's iterates bit for bit, most distances skipped),
``init`` (k-means++, random), ``host_init`` (k-means++ in NumPy for small data), ``fit`` (the program and
``KMeansResult``), ``auto_k`` (sweep over k <= k_max in one call), ``palette`` (image colours), ``validate``
(input checks), ``frame`` (float64 centring and rescaling of the points, and the float64 statistics back),
``shards``. Commands and measured figures: README.md here.
"""
from jaxml.kmeans.auto_k import AutoKResult, kmeans_auto_k
from jaxml.kmeans.fit import KMeansResult, init_centers, kmeans

__all__ = ["AutoKResult", "KMeansResult", "init_centers", "kmeans", "kmeans_auto_k"]
