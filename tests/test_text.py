"""Tokenizer, vocabulary and encoding: hand-written strings, the vectorised tokenizer against its
plain-Python specification, and n-gram counts against scikit-learn's CountVectorizer."""
import random

import numpy as np
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from jaxml.naive_bayes import text


@pytest.mark.parametrize("raw,with_stop,without_stop", [
    ("Hello, World! This is GREAT...", ["hello", "world", "great"],
     ["hello", "world", "this", "is", "great"]),
    ("end.<br /><br />Next line<i>italic</i>", ["end", "next", "line", "italic"],
     ["end", "next", "line", "italic"]),
    ("I don't like it; it's 10/10 -- NOT!", ["like"], ["i", "don", "t", "like", "it", "it", "s", "not"]),
    ("Café naïve Ångström x2y", ["caf", "na", "ngstr", "x"], ["caf", "na", "ve", "ngstr", "m", "x", "y"]),
    ("", [], []),
    ("<br />123 !!! <p>", [], []),
    ("tab\tand\nnewline", ["tab", "newline"], ["tab", "and", "newline"]),
])
def test_hand_written_strings(raw, with_stop, without_stop):
    assert text.tokenize_reference(raw) == with_stop
    assert text.tokenize_reference(raw, stop_words=False) == without_stop
    for stop, want in ((True, with_stop), (False, without_stop)):
        tok = text.tokenize([raw, raw], stop_words=stop)
        assert tok.document(0) == want and tok.document(1) == want
        np.testing.assert_array_equal(tok.offsets, [0, len(want), 2 * len(want)])


def test_html_tags_removed_not_glued():
    assert text.tokenize_reference("word<br />word", stop_words=False) == ["word", "word"]
    assert text.tokenize_reference("a<b", stop_words=False, strip_html=True) == ["a", "b"]
    assert text.tokenize_reference("x <b>y</b>", stop_words=False, strip_html=False) == ["x", "b", "y", "b"]


def test_stop_word_list_is_shipped():
    stop = text.load_stop_words()
    assert len(stop) == 179
    assert {"the", "and", "not", "don", "t", "is"} <= stop
    assert "good" not in stop and "bad" not in stop


def _random_doc(rng):
    pieces = ["Good", "BAD", "movie", "the", "<br />", "<a href='x'>", "!", "…", "é", "Ünïcode", " ",
              "  ", "\t", "123", "don't", "IT'S", "z", "a-b", "<", ">", "ü<i>x</i>", "ß", "K"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))


@pytest.mark.parametrize("stop_words,strip_html", [(True, True), (False, True), (False, False)])
def test_vectorised_tokenizer_matches_reference(stop_words, strip_html):
    rng = random.Random(0)
    docs = [_random_doc(rng) for _ in range(500)]
    for chunk_size, workers in ((1, None), (7, 1), (7, 3), (4096, None)):
        tok = text.tokenize(docs, stop_words=stop_words, strip_html=strip_html, chunk_size=chunk_size,
                            workers=workers)
        assert tok.num_docs == len(docs)
        for d, raw in enumerate(docs):
            assert tok.document(d) == text.tokenize_reference(raw, stop_words=stop_words,
                                                              strip_html=strip_html), (chunk_size, raw)


def test_accepts_arrow_bytes_and_sliced_arrays():
    docs = ["Alpha beta", "GAMMA!", "delta<br />epsilon"]
    want = [["alpha", "beta"], ["gamma"], ["delta", "epsilon"]]
    for arr in (pa.array([d.encode() for d in docs], pa.binary()),
                pa.array(["junk"] + docs, pa.string()).slice(1),
                np.array(docs, dtype=object)):
        tok = text.tokenize(arr, stop_words=False)
        assert [tok.document(d) for d in range(3)] == want


def test_missing_document_is_an_error():
    with pytest.raises(ValueError, match=r"document 1 is missing \(None\)"):
        text.tokenize(["ok", None, "fine"])


def test_progress_bar_on_request(capsys):
    text.tokenize(["some words here"] * 50, progress=True, chunk_size=10)
    assert "tokenize" in capsys.readouterr().err


CORPUS = ["The cat sat on the mat.", "The dog sat; the cat ran!", "A dog, a cat, a mat<br />a hat.",
          "", "cat cat cat"]


def test_vocabulary_min_count_max_size_and_terms():
    tok = text.tokenize(CORPUS, stop_words=False)
    # unigram counts: a 4, cat 6, the 4, sat 2, mat 2, dog 2, on 1, ran 1, hat 1
    vocab = text.build_vocabulary(tok, min_count=2)
    assert sorted(vocab.terms()) == ["a", "cat", "dog", "mat", "sat", "the"]
    top = text.build_vocabulary(tok, max_size=3)
    assert sorted(top.terms()) == ["a", "cat", "the"]              # 6, 4, 4 (ties: first seen)
    bi = text.build_vocabulary(tok, ngram_range=(2, 2), min_count=2)
    assert sorted(bi.terms()) == ["cat cat", "the cat"]
    with pytest.raises(ValueError, match="min_count must be >= 1"):
        text.build_vocabulary(tok, min_count=0)
    with pytest.raises(ValueError, match=r"ngram_range must satisfy 1 <= lo <= hi"):
        text.build_vocabulary(tok, ngram_range=(2, 1))


@pytest.mark.parametrize("ngram_range,min_count", [((1, 1), 1), ((1, 2), 1), ((2, 3), 1), ((1, 3), 2)])
def test_encoding_counts_match_sklearn_countvectorizer(ngram_range, min_count):
    rng = random.Random(1)
    words = ["good", "bad", "film", "plot", "acting", "not", "very", "great", "dull", "story"]
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 15))) for _ in range(300)]
    tok = text.tokenize(docs, stop_words=False)
    vocab = text.build_vocabulary(tok, ngram_range=ngram_range, min_count=min_count)
    ours = vocab.encode(tok).to_csr().toarray()
    cv = CountVectorizer(tokenizer=lambda s: text.tokenize_reference(s, stop_words=False),
                         token_pattern=None, lowercase=False, ngram_range=ngram_range)
    ref = cv.fit_transform(docs).toarray()
    keep = ref.sum(axis=0) >= min_count
    names = list(cv.get_feature_names_out()[keep])
    assert sorted(vocab.terms()) == sorted(names)
    order = [vocab.terms().index(n) for n in names]
    np.testing.assert_array_equal(ours[:, order], ref[:, keep])


def test_ngrams_never_cross_documents_or_unknown_words():
    tok = text.tokenize(["alpha beta", "gamma delta"], stop_words=False)
    vocab = text.build_vocabulary(tok, ngram_range=(2, 2))
    assert sorted(vocab.terms()) == ["alpha beta", "gamma delta"]        # no "beta gamma"
    new = text.tokenize(["alpha zzz beta", "alpha beta gamma delta", "beta gamma"], stop_words=False)
    enc = vocab.encode(new)
    terms = vocab.terms()
    assert [[terms[i] for i in enc.token_ids[enc.offsets[d]:enc.offsets[d + 1]]] for d in range(3)] == \
        [[], ["alpha beta", "gamma delta"], []]
    np.testing.assert_array_equal(enc.empty_docs(), [0, 2])


def test_encoded_offsets_binarize_and_roundtrip():
    tok = text.tokenize(CORPUS, stop_words=False)
    vocab = text.build_vocabulary(tok)
    enc = vocab.encode(tok)
    np.testing.assert_array_equal(np.diff(enc.offsets), [6, 6, 8, 0, 3])
    assert enc.token_ids.dtype == np.int32 and enc.offsets.dtype == np.int64
    b = enc.binarize()
    np.testing.assert_array_equal(b.to_csr().toarray(), (enc.to_csr().toarray() > 0).astype(int))
    np.testing.assert_array_equal(np.diff(b.offsets), [5, 5, 5, 0, 1])
    again = text.Vocabulary.from_arrays(vocab.to_arrays())
    assert again.terms() == vocab.terms()
    np.testing.assert_array_equal(again.encode(tok).token_ids, enc.token_ids)
