"""Sparse bag-of-terms documents as fixed-length chunks of term ids: linear scores by gather + segment-sum.

A linear model over presence features scores document ``d`` as ``s[p, d] = sum_{t in d} v[p, t]``
(``v = w * r`` for NBSVM). A flat token stream would need one segment-sum over every token; cutting
each document into chunks of ``K`` term ids (the last one padded with the id ``V``, whose weight is 0)
turns most of it into a dense row sum::

    chunk[p, n] = sum_k v_ext[p, ids[n, k]]          v_ext = [v, 0]: f[P, V + 1]
    s[p, m]     = sum_{n : chunk_doc[n] = m} chunk[p, n]

so only one value per chunk goes through the segment-sum; the gradient (:func:`chunk_gradient`) is one
segment-sum over the chunk slots into ``V`` bins per group. Never a dense ``[D, V]`` matrix.

The documents are split into ``G`` groups of consecutive documents with about as many chunks each, every
group padded to the same ``N`` chunks and ``M`` documents. A device of the ``data`` mesh axis holds
``G / S`` whole groups: what is computed per group does not depend on the number of devices ``S``.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class DocChunks:
    """``G`` groups of documents as chunks of term ids.

    ids:       i32[G, N, K] term ids, padding = ``vocab_size``;
    chunk_doc: i32[G, N] the group-local document (``0..M-1``) of every chunk, sorted (padding chunks:
               ``M - 1``; they sum to exactly 0);
    doc_index: i32[G, M] the corpus index of every group-local document (-1 = padding document).
    """
    ids: np.ndarray
    chunk_doc: np.ndarray
    doc_index: np.ndarray
    vocab_size: int

    @property
    def num_groups(self) -> int:
        return self.ids.shape[0]

    @property
    def docs_per_group(self) -> int:
        return self.doc_index.shape[1]

    def group_values(self, values: np.ndarray, fill=0) -> np.ndarray:
        """``values: [D, ...]`` per corpus document -> ``[G, M, ...]`` per group-local document."""
        out = np.asarray(values)[np.maximum(self.doc_index, 0)]
        out[self.doc_index < 0] = fill
        return out


def chunk_documents(token_ids: np.ndarray, offsets: np.ndarray, *, vocab_size: int, num_groups: int = 1,
                    chunk: int = 64) -> DocChunks:
    """Cut the CSR corpus (``token_ids: i32[T]``, ``offsets: i64[D + 1]``) into ``num_groups`` groups of
    chunks of ``chunk`` term ids (see the module docstring)."""
    if num_groups < 1:
        raise ValueError(f"num_groups must be >= 1, got {num_groups}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    offsets = np.asarray(offsets, np.int64)
    ids = np.asarray(token_ids, np.int32)
    num_docs = len(offsets) - 1
    lens = np.diff(offsets)
    nch = -(-lens // chunk)                                   # chunks per document
    first_chunk = np.zeros(num_docs + 1, np.int64)
    np.cumsum(nch, out=first_chunk[1:])
    total = int(first_chunk[-1])
    # Group g holds documents bounds[g]:bounds[g + 1], about total / G chunks.
    bounds = np.searchsorted(first_chunk[1:], np.arange(num_groups + 1) * total / num_groups, side="left")
    bounds[0], bounds[-1] = 0, num_docs
    bounds = np.maximum.accumulate(bounds)
    chunk_bounds = first_chunk[bounds]
    n = max(1, int(np.diff(chunk_bounds).max()))
    m = max(1, int(np.diff(bounds).max()))
    group = np.repeat(np.arange(num_groups), np.diff(bounds))
    # Document d's chunks start at flat chunk row `row[d]`; its token j goes to slot row[d] * K + j.
    row = first_chunk[:-1] - chunk_bounds[group] + group * n
    slots = num_groups * n * chunk
    index = np.int32 if slots < 2 ** 31 else np.int64              # half the memory traffic of int64
    dest = np.arange(len(ids), dtype=index)
    dest += np.repeat((row * chunk - offsets[:-1]).astype(index), lens)
    flat = np.full(slots, vocab_size, np.int32)
    flat[dest] = ids
    local_doc = np.arange(num_docs) - bounds[group]
    chunk_doc = np.full(num_groups * n, m - 1, np.int32)
    chunk_doc[np.repeat(row - first_chunk[:-1], nch) + np.arange(total)] = np.repeat(local_doc, nch)
    doc_index = np.full((num_groups, m), -1, np.int32)
    doc_index[group, local_doc] = np.arange(num_docs)
    return DocChunks(flat.reshape(num_groups, n, chunk), chunk_doc.reshape(num_groups, n), doc_index,
                     int(vocab_size))


def gradient_bins(ids, vocab_size: int, groups_per_device: int):
    """i32[G, N K]: the bin of every chunk slot (``ids: i32[G, N, K]``) in :func:`chunk_gradient`'s segment-sum
    on devices that hold ``groups_per_device`` consecutive groups each: term ``t`` of a device's ``k``-th group
    goes to bin ``k (V + 1) + t``. Computed once per fit (adding the offsets inside every gradient is slower)."""
    local = jnp.arange(ids.shape[0], dtype=jnp.int32) % groups_per_device
    return ids.reshape(ids.shape[0], -1) + (vocab_size + 1) * local[:, None]


def chunk_scores(v, ids, chunk_doc, num_docs: int):
    """Scores ``f[G, P, M]`` of ``G`` groups: ``v: f[P, V]`` weights, ``ids: i32[G, N, K]``, ``chunk_doc: i32[G, N]``
    (sorted in each group), ``num_docs = M``."""
    groups, n = chunk_doc.shape
    rows = jnp.concatenate([v, jnp.zeros((v.shape[0], 1), v.dtype)], axis=1).T          # [V + 1, P]
    per_chunk = jnp.take(rows, ids, axis=0).sum(axis=2).reshape(groups * n, -1)       # [G N, P]
    doc = (chunk_doc + num_docs * jnp.arange(groups, dtype=chunk_doc.dtype)[:, None]).reshape(-1)
    s = jax.ops.segment_sum(per_chunk, doc, groups * num_docs, indices_are_sorted=True)
    return s.reshape(groups, num_docs, -1).transpose(0, 2, 1)


def chunk_gradient(g, bins, chunk_doc, vocab_size: int):
    """The transpose of :func:`chunk_scores`: ``dv[k, p, t] = sum_{d in group k holds t} g[k, p, d]`` for
    ``g: f[G, P, M]`` -> f[G, P, V], one partial sum per group; ``bins = gradient_bins(ids, V, G)``.

    One segment-sum of ``g[k, :, doc of the chunk]`` over all chunk slots into ``G (V + 1)`` bins, with 1-D
    precomputed indices: on CPU faster than the scatter-add that autodiff writes for the gather, than a
    vmapped segment-sum (whose indices gain a batch column) and than adding the group offsets on the fly.
    """
    groups, p = bins.shape[0], g.shape[1]
    per_chunk = jnp.take_along_axis(g.transpose(0, 2, 1), chunk_doc[:, :, None], axis=1)       # [G, N, P]
    k = bins.shape[1] // chunk_doc.shape[1]
    per_slot = jnp.broadcast_to(per_chunk[:, :, None, :], chunk_doc.shape + (k, p)).reshape(-1, p)
    dv = jax.ops.segment_sum(per_slot, bins.reshape(-1), groups * (vocab_size + 1))
    return dv.reshape(groups, vocab_size + 1, p)[:, :vocab_size].transpose(0, 2, 1)
