"""Tokenizer, n-gram vocabulary and corpus encoding for bag-of-words models (naive Bayes).

Tokenization follows the from-scratch book's rules, applied to a whole corpus at once:

1. HTML tags ``<...>`` (IMDB's ``<br />``) become a space;
2. every character that is not an ASCII letter becomes a space, and ``A-Z`` become ``a-z``;
3. the text is split on spaces, and stop words (``stopwords_en.txt`` beside this module, NLTK's
   English list shipped with jaxml: nothing is downloaded) are dropped.

:func:`tokenize_reference` is the same rule for one string in plain Python (``re``); the corpus
tokenizer :func:`tokenize` is its vectorised twin. It is the bottleneck of the whole naive Bayes
pipeline, so it never loops over documents or words in Python: Arrow's C++ kernels strip tags and
split, one 256-entry byte table lowercases and blanks non-letters over the whole text buffer, and a
hash dictionary encodes every token to an integer id. A chunked loop exists only to drive a tqdm
bar on large corpora.

Shapes: a corpus of ``D`` documents and ``T`` tokens is held flat, CSR-style —
``ids: i32[T]`` and ``offsets: i64[D + 1]``; document ``d`` owns ``ids[offsets[d]:offsets[d+1]]``.

N-grams are numbered without strings: with ``B`` words, the n-gram ``(w_1 .. w_n)`` has the key
``sum_{m=1}^{n-1} B^m + sum_j w_j B^(n-j)`` (the first term keeps the orders apart), an int64.
A :class:`Vocabulary` is the sorted array of kept keys; the id of a term is its position there.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
import pathlib
import re
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

_TAG_PATTERN = r"<[^>]*>"
_TAG_RE = re.compile(_TAG_PATTERN)
_NON_LETTERS_RE = re.compile(r"[^A-Za-z]+")
STOP_WORDS_FILE = pathlib.Path(__file__).with_name("stopwords_en.txt")

# Byte table: a-z stay, A-Z -> a-z, every other byte (digits, punctuation, UTF-8 multi-byte
# sequences) -> space. Byte lengths are unchanged, so Arrow's string offsets stay valid.
_LUT = np.full(256, ord(" "), np.uint8)
_LUT[ord("a"):ord("z") + 1] = np.arange(ord("a"), ord("z") + 1, dtype=np.uint8)
_LUT[ord("A"):ord("Z") + 1] = np.arange(ord("a"), ord("z") + 1, dtype=np.uint8)


@functools.lru_cache(maxsize=None)
def load_stop_words(path: str | None = None) -> frozenset[str]:
    """The stop-word set from ``path`` (default: ``stopwords_en.txt`` beside this module); '#' lines are comments."""
    text = pathlib.Path(path or STOP_WORDS_FILE).read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))


def _stop_set(stop_words: bool | Iterable[str] | None) -> frozenset[str]:
    if stop_words is True:
        return load_stop_words()
    if not stop_words:
        return frozenset()
    return frozenset(stop_words)


def tokenize_reference(text: str, *, stop_words: bool | Iterable[str] | None = True,
                       strip_html: bool = True) -> list[str]:
    """One document, plain Python: the specification :func:`tokenize` must match token for token."""
    stop = _stop_set(stop_words)
    if strip_html:
        text = _TAG_RE.sub(" ", text)
    return [w for w in _NON_LETTERS_RE.sub(" ", text).lower().split() if w not in stop]


def offsets_from_counts(counts) -> np.ndarray:
    """Tokens per document i64[D] -> CSR offsets i64[D + 1] (0, then the running total)."""
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


class _Documents:
    """What a CSR corpus (``offsets: i64[D + 1]``) says about its documents."""
    offsets: np.ndarray

    @property
    def num_docs(self) -> int:
        return len(self.offsets) - 1

    def doc_ids(self) -> np.ndarray:
        """i32[T]: the document of every token."""
        return np.repeat(np.arange(self.num_docs, dtype=np.int32), np.diff(self.offsets))


@dataclasses.dataclass(frozen=True)
class Tokenized(_Documents):
    """A tokenized corpus, dictionary-encoded.

    words:    str[W] distinct words in order of first appearance (a pyarrow array);
    word_ids: i32[T] index into ``words`` of every token, documents one after another;
    offsets:  i64[D + 1] document ``d`` is ``word_ids[offsets[d]:offsets[d + 1]]``.
    """
    words: pa.Array
    word_ids: np.ndarray
    offsets: np.ndarray

    def document(self, d: int) -> list[str]:
        """The tokens of document ``d`` as strings (for inspection and tests)."""
        ids = self.word_ids[self.offsets[d]:self.offsets[d + 1]]
        return self.words.take(pa.array(ids)).to_pylist()


def _as_arrow_strings(texts) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts) if not isinstance(texts, (list, np.ndarray)) else texts,
                         type=pa.large_string())
    if pa.types.is_binary(texts.type) or pa.types.is_large_binary(texts.type):
        texts = texts.cast(pa.large_binary()).cast(pa.large_string())   # validates UTF-8
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        raise TypeError(f"tokenize expects strings, got an array of {texts.type}")
    if texts.null_count:
        first = int(np.flatnonzero(np.asarray(texts.is_null()))[0])
        raise ValueError(f"document {first} is missing (None); {texts.null_count} missing in all")
    return texts.cast(pa.large_string())


def _letters_lower(arr: pa.Array) -> pa.Array:
    """Apply the byte table to the bytes of ``arr`` (large_string, no nulls) -> a fresh array."""
    offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset:arr.offset + len(arr) + 1]
    start, stop = int(offsets[0]), int(offsets[-1])
    data = arr.buffers()[2]
    raw = np.frombuffer(data, np.uint8)[start:stop] if data is not None else np.zeros(0, np.uint8)
    return pa.Array.from_buffers(pa.large_string(), len(arr),
                                 [None, pa.py_buffer(offsets - start), pa.py_buffer(_LUT[raw])])


def _tokenize_chunk(chunk: pa.Array, strip_html: bool, stop: pa.Array | None):
    """One chunk of documents -> (its words: str[W], word ids: i32[T], tokens per document: i64[D]).

    Stop words and the empty strings the split leaves at document ends are dropped on the chunk's
    (small) dictionary, never token by token.
    """
    if strip_html:
        chunk = pc.replace_substring_regex(chunk, _TAG_PATTERN, " ")
    lists = pc.ascii_split_whitespace(_letters_lower(chunk))
    encoded = pc.dictionary_encode(lists.flatten())
    words, idx = encoded.dictionary, np.asarray(encoded.indices)
    drop = np.asarray(pc.equal(pc.binary_length(words), 0))
    if stop is not None:
        drop |= np.asarray(pc.is_in(words, value_set=stop))
    keep = ~drop[idx]
    doc = np.repeat(np.arange(len(chunk)), np.diff(np.asarray(lists.offsets)))
    counts = np.bincount(doc[keep], minlength=len(chunk))
    compact = np.cumsum(~drop, dtype=np.int64) - 1
    return words.filter(pa.array(~drop)), compact[idx[keep]], counts


def tokenize(texts: Sequence[str] | pa.Array, *, stop_words: bool | Iterable[str] | None = True,
             strip_html: bool = True, chunk_size: int = 4096,
             progress: bool | None = None, workers: int | None = None) -> Tokenized:
    """Tokenize a corpus (list of str, numpy or pyarrow strings/bytes) into a :class:`Tokenized`.

    ``stop_words``: True for jaxml's English list, False/None for none, or an iterable of words.
    ``progress``: tqdm bar over documents; None shows it from 20,000 documents on.
    ``workers``: threads tokenizing chunks of ``chunk_size`` documents (default: all CPU cores).
    Empty documents (nothing left after tokenization) are kept, with zero tokens.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    arr = _as_arrow_strings(texts)
    n = len(arr)
    show = progress if progress is not None else n >= 20_000
    stop = _stop_set(stop_words)
    stop_arr = pa.array(sorted(stop), pa.large_string()) if stop else None
    starts = range(0, n, chunk_size)
    workers = max(1, min(workers or os.cpu_count() or 1, len(starts)))
    parts = []
    # Arrow and numpy release the GIL: chunks are tokenized by a thread pool, results kept in order.
    with tqdm(total=n, desc="tokenize", unit="doc", disable=not show, leave=False) as bar, \
            concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for part in pool.map(lambda s: _tokenize_chunk(arr.slice(s, chunk_size), strip_html, stop_arr),
                             starts):
            parts.append(part)
            bar.update(len(part[2]))
    if not parts:
        return Tokenized(pa.array([], pa.large_string()), np.zeros(0, np.int32), np.zeros(1, np.int64))
    # One dictionary for the corpus: encode the concatenated chunk dictionaries (first appearance
    # order, as if the corpus were encoded in one go) and map every chunk's ids through it.
    unified = pc.dictionary_encode(pa.concat_arrays([p[0] for p in parts]))
    to_corpus = np.asarray(unified.indices)
    base = np.cumsum([0] + [len(p[0]) for p in parts])
    ids = np.concatenate([to_corpus[b + p[1]] for b, p in zip(base, parts)]).astype(np.int32)
    offsets = offsets_from_counts(np.concatenate([p[2] for p in parts]))
    return Tokenized(words=unified.dictionary, word_ids=ids, offsets=offsets)


# ----------------------------------------------------------------------------------------------
# N-gram keys and the vocabulary


def _order_offset(n: int, base: int) -> int:
    return sum(base ** m for m in range(1, n))


def _ngram_words(keys: np.ndarray, n: int, base: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Decode the n-gram keys among ``keys``: (mask of the keys of order n, [i64[K_n] word index of position
    j] for j = 1..n)."""
    first = _order_offset(n, base)
    sel = (keys >= first) & (keys < first + base ** n)
    rest, parts = keys[sel] - first, []
    for _ in range(n):
        rest, last = np.divmod(rest, base)
        parts.append(last)
    return sel, parts[::-1]


def _check_ngram_range(ngram_range) -> tuple[int, int]:
    lo, hi = (int(v) for v in ngram_range)
    if not 1 <= lo <= hi:
        raise ValueError(f"ngram_range must satisfy 1 <= lo <= hi, got {tuple(ngram_range)}")
    return lo, hi


def ngram_keys(word_ids: np.ndarray, doc_ids: np.ndarray, ngram_range: tuple[int, int],
               base: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys of all n-grams starting at every token, position-major.

    word_ids: i64[T] (-1 = unknown word: no n-gram through it); doc_ids: i32[T].
    Returns (keys: i64[K], doc: i32[K]) of the valid n-grams (inside one document, no unknown
    word), ordered by start position then order — hence grouped by document.
    """
    lo, hi = _check_ngram_range(ngram_range)
    if (base + 1) ** hi >= 2 ** 62:
        raise ValueError(f"{base} words and {hi}-grams overflow int64 n-gram keys")
    w = np.asarray(word_ids, np.int64)
    t = len(w)
    orders = range(lo, hi + 1)
    keys = np.full((t, len(orders)), -1, np.int64)
    for col, n in enumerate(orders):
        m = t - n + 1
        if m <= 0:
            continue
        k = w[:m].copy()
        valid = k >= 0
        for j in range(1, n):
            nxt = w[j:j + m]
            k = k * base + nxt
            valid &= nxt >= 0
        if n > 1:
            valid &= doc_ids[:m] == doc_ids[n - 1:n - 1 + m]
        keys[:m, col] = np.where(valid, k + _order_offset(n, base), -1)
    flat = keys.reshape(-1)
    keep = flat >= 0
    doc = np.repeat(np.asarray(doc_ids, np.int32), len(orders))
    return flat[keep], doc[keep]


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """The kept n-grams: ``words: str[B]`` (every word any term uses), ``keys: i64[V]`` sorted.

    Term ``v`` is the n-gram with key ``keys[v]`` over the base ``B = len(words)``.
    """
    words: np.ndarray
    keys: np.ndarray
    ngram_range: tuple[int, int]

    def __len__(self) -> int:
        return len(self.keys)

    def terms(self) -> list[str]:
        """All terms as strings ("word" or "word1 word2"), in id order."""
        base, words = len(self.words), np.asarray(self.words, dtype=object)
        out = np.empty(len(self.keys), dtype=object)
        lo, hi = self.ngram_range
        for n in range(lo, hi + 1):
            sel, parts = _ngram_words(self.keys, n, base)
            out[sel] = [" ".join(p) for p in zip(*(words[c] for c in parts))] if n > 1 else words[parts[0]]
        return out.tolist()

    def encode(self, tok: Tokenized) -> "EncodedCorpus":
        """Term ids of every n-gram of ``tok`` that is in the vocabulary (others are dropped)."""
        words = pa.array(self.words, pa.large_string())
        to_word = np.asarray(pc.fill_null(pc.index_in(tok.words, value_set=words), -1), np.int64)
        w = to_word[tok.word_ids] if len(tok.word_ids) else np.zeros(0, np.int64)
        base = len(self.words)
        keys, doc = ngram_keys(w, tok.doc_ids(), self.ngram_range, base)
        ids = np.full(len(keys), -1, np.int64)
        lo, hi = self.ngram_range
        for n in range(lo, hi + 1):                  # one lookup per order: smaller tables
            first, end = _order_offset(n, base), _order_offset(n + 1, base)
            a, b = np.searchsorted(self.keys, [first, end])
            sel = np.flatnonzero((keys >= first) & (keys < end)) if lo < hi else slice(None)
            if n == 1:                               # unigram keys are word ids: a dense table
                table = np.full(base, -1, np.int64)
                table[self.keys[a:b]] = np.arange(a, b)
                ids[sel] = table[keys[sel]]
            else:
                hit = pc.index_in(pa.array(keys[sel]), value_set=pa.array(self.keys[a:b]))
                ids[sel] = np.asarray(pc.fill_null(hit, -1 - a), np.int64) + a
        found = ids >= 0
        offsets = offsets_from_counts(np.bincount(doc[found], minlength=tok.num_docs))
        return EncodedCorpus(ids[found].astype(np.int32), offsets, len(self))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"vocab_words": np.asarray(self.words, dtype=str), "vocab_keys": self.keys,
                "vocab_ngram_range": np.asarray(self.ngram_range, np.int64)}

    @classmethod
    def from_arrays(cls, arrays) -> "Vocabulary":
        return cls(np.asarray(arrays["vocab_words"]), np.asarray(arrays["vocab_keys"], np.int64),
                   tuple(int(v) for v in arrays["vocab_ngram_range"]))


def build_vocabulary(tok: Tokenized, *, ngram_range: tuple[int, int] = (1, 1), min_count: int = 1,
                     max_size: int | None = None) -> Vocabulary:
    """Keep the n-grams of ``tok`` seen at least ``min_count`` times, at most ``max_size`` of them
    (the most frequent; ties go to the smaller key, so the result is deterministic)."""
    lo, hi = _check_ngram_range(ngram_range)
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    if max_size is not None and max_size < 1:
        raise ValueError(f"max_size must be >= 1 or None, got {max_size}")
    # An n-gram occurs at most as often as each of its words: words rarer than min_count can be
    # dropped up front (-1 breaks every n-gram through them), which shrinks the key base.
    word_count = np.bincount(tok.word_ids, minlength=len(tok.words))
    frequent = np.flatnonzero(word_count >= min_count)
    to_frequent = np.full(len(tok.words), -1, np.int64)
    to_frequent[frequent] = np.arange(len(frequent))
    base = len(frequent)
    keys, _ = ngram_keys(to_frequent[tok.word_ids], tok.doc_ids(), (lo, hi), base)
    values, counts = np.unique(keys, return_counts=True)     # sort-based: faster than hashing here
    sel = counts >= min_count
    values, counts = values[sel], counts[sel]
    if max_size is not None and len(values) > max_size:
        order = np.lexsort((values, -counts))[:max_size]
        values = values[order]
    # Re-number over the words the kept terms use, so the vocabulary is compact.
    parts = [(n, _ngram_words(values, n, base)[1]) for n in range(lo, hi + 1)]
    is_used = np.zeros(base, bool)
    for _, comps in parts:
        for c in comps:
            is_used[c] = True
    used = np.flatnonzero(is_used)
    remap = np.full(max(base, 1), -1, np.int64)
    remap[used] = np.arange(len(used))
    new_base = len(used)
    new_keys = []
    for n, comps in parts:
        k = np.zeros(len(comps[0]), np.int64)
        for c in comps:
            k = k * new_base + remap[c]
        new_keys.append(k + _order_offset(n, new_base))
    used = frequent[used]
    words = np.asarray(tok.words.take(pa.array(used)).to_pylist(), dtype=str) if len(used) else np.zeros(0, str)
    return Vocabulary(words, np.sort(np.concatenate(new_keys)), (lo, hi))


@dataclasses.dataclass(frozen=True)
class EncodedCorpus(_Documents):
    """Term ids of a corpus: ``token_ids: i32[T]``, ``offsets: i64[D + 1]``, ``vocab_size: V``."""
    token_ids: np.ndarray
    offsets: np.ndarray
    vocab_size: int

    def empty_docs(self) -> np.ndarray:
        """Indices of documents with no known term (naive Bayes predicts them from the prior)."""
        return np.flatnonzero(np.diff(self.offsets) == 0)

    def binarize(self) -> "EncodedCorpus":
        """Each term at most once per document (presence instead of counts)."""
        if not len(self.token_ids):
            return self
        key = np.sort(self.doc_ids().astype(np.int64) * self.vocab_size + self.token_ids)
        first = np.empty(len(key), bool)                 # sorted by (doc, term): still by document
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        doc, ids = np.divmod(key[first], self.vocab_size)
        offsets = offsets_from_counts(np.bincount(doc, minlength=self.num_docs))
        return EncodedCorpus(ids.astype(np.int32), offsets, self.vocab_size)

    def to_csr(self):
        """The ``[D, V]`` count matrix as ``scipy.sparse.csr_matrix`` (duplicates summed)."""
        import scipy.sparse as sp
        m = sp.csr_matrix((np.ones(len(self.token_ids), np.int64), self.token_ids.copy(), self.offsets.copy()),
                          shape=(self.num_docs, self.vocab_size))
        m.sum_duplicates()
        return m
