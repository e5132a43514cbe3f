"""Bag-of-n-grams naive Bayes text classifier: tokenize -> vocabulary -> count -> fit -> predict.

The pipeline every naive Bayes entry point shares (the IMDB task, its table script, the benchmark):

    model = fit_text_classifier(texts, labels, num_classes=2, ngram_range=(1, 2), binary=True)
    scores = model.scores(more_texts)            # f[D, C] joint log-likelihoods
    model.save(path); TextNBModel.load(path)     # one .npz: vocabulary + weights + settings

Counting runs sharded over the ``data`` mesh axis (``counts.count_tokens_sharded``): the
counts, hence the model, are identical whatever the number of devices.
"""
from __future__ import annotations

import dataclasses
import json
import os
import zipfile

import jax
import numpy as np

from jaxml import compile_cache
from jaxml.data.arrays import named_sha256
from jaxml.naive_bayes import text, validate
from jaxml.naive_bayes.classifier import KINDS, fit_params, token_scores_bucketed
from jaxml.naive_bayes.counts import check_class_counts, count_tokens_sharded


@dataclasses.dataclass(frozen=True)
class TextNBModel:
    """A fitted classifier: its vocabulary, linear scores ``weight: f[C, V]``, ``bias: f[C]``
    (see ``classifier.py``), and the tokenizer settings it was fitted with."""
    vocab: text.Vocabulary
    params: dict
    kind: str
    binary: bool
    stop_words: bool
    strip_html: bool
    class_names: tuple[str, ...]
    counts: dict | None = None

    def encode(self, texts, progress: bool | None = None) -> text.EncodedCorpus:
        texts = validate.texts(texts, "TextNBModel")
        tok = text.tokenize(texts, stop_words=self.stop_words, strip_html=self.strip_html,
                            progress=progress)
        enc = self.vocab.encode(tok)
        return enc.binarize() if self.binary else enc

    def scores_encoded(self, enc: text.EncodedCorpus) -> np.ndarray:
        """f[D, C] joint log-likelihoods; a document with no known term scores the prior. (Streams padded to
        bucket sizes: ``classifier.token_scores_bucketed``.)"""
        return token_scores_bucketed(self.params, enc.token_ids, enc.doc_ids(), num_docs=enc.num_docs)

    def scores(self, texts, progress: bool | None = None) -> np.ndarray:
        return self.scores_encoded(self.encode(texts, progress))

    def predict(self, texts, progress: bool | None = None) -> np.ndarray:
        return self.scores(texts, progress).argmax(axis=1)

    def save(self, path: str | os.PathLike) -> None:
        """Write vocabulary, weights and settings to one ``.npz`` (written to a temp file, renamed), with the
        SHA-256 of its arrays (``digest``), which ``load`` verifies."""
        settings = {"kind": self.kind, "binary": self.binary, "stop_words": self.stop_words,
                    "strip_html": self.strip_html, "class_names": list(self.class_names)}
        arrays = {**self.vocab.to_arrays(), "weight": np.asarray(self.params["weight"]),
                  "bias": np.asarray(self.params["bias"]),
                  "settings": np.asarray(json.dumps(settings))}
        tmp = f"{path}.tmp.npz"
        np.savez(tmp, **arrays, digest=np.asarray(named_sha256(sorted(arrays.items()))))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TextNBModel":
        """The model ``save`` wrote to ``path``; a file that does not read, or whose arrays do not match their
        digest (edited, damaged, or saved without one), fails naming ``path``."""
        try:
            with np.load(path) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"cannot read the naive Bayes model {str(path)!r} ({type(e).__name__}: {e}); fit and "
                             "save it again") from None
        digest = str(arrays.pop("digest", ""))
        if digest != named_sha256(sorted(arrays.items())):
            why = "has no digest" if not digest else "does not match its digest (it was changed after it was saved)"
            raise ValueError(f"the naive Bayes model {str(path)!r} {why}; fit and save it again")
        settings = json.loads(str(arrays["settings"]))
        vocab = text.Vocabulary.from_arrays(arrays)
        params = {"weight": arrays["weight"], "bias": arrays["bias"]}
        return cls(vocab, params, settings["kind"], settings["binary"], settings["stop_words"],
                   settings["strip_html"], tuple(settings["class_names"]))


def fit_text_classifier(texts, labels, *, num_classes: int, class_names=None, kind: str = "multinomial",
                        alpha: float = 1.0, fit_prior: bool = True, norm: bool = False,
                        binary: bool = False, stop_words: bool = True, strip_html: bool = True,
                        ngram_range=(1, 1), min_count: int = 1, max_size: int | None = None,
                        mesh: jax.sharding.Mesh | None = None, progress: bool | None = None
                        ) -> TextNBModel:
    """Fit on ``texts`` (str[D]) with ``labels`` (int[D] in ``0..num_classes-1``).

    ``kind="bernoulli"`` always binarises (presence); ``binary=True`` binarises the other kinds.
    Warns (RuntimeWarning) for a class without training documents: it is never predicted. The first call
    switches on the persistent compilation cache (``jaxml.compile_cache``).
    """
    compile_cache.enable()
    who = "fit_text_classifier"
    if kind not in KINDS:
        raise ValueError(f"unknown naive Bayes kind {kind!r}; expected one of {KINDS}")
    num_classes = validate.positive_int(num_classes, "num_classes", who)
    texts = validate.texts(texts, who)
    labels = validate.text_labels(labels, len(texts), num_classes, who, class_names)
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{who}: class_names has {len(class_names)} names for num_classes={num_classes}")
    class_names = tuple(class_names or (str(c) for c in range(num_classes)))
    binary = binary or kind == "bernoulli"
    tok = text.tokenize(texts, stop_words=stop_words, strip_html=strip_html, progress=progress)
    vocab = text.build_vocabulary(tok, ngram_range=tuple(ngram_range), min_count=min_count,
                                  max_size=max_size)
    if len(vocab) == 0:
        raise ValueError("the training texts leave an empty vocabulary (all documents empty after "
                         f"tokenization, or min_count={min_count} too high)")
    enc = vocab.encode(tok)
    enc = enc.binarize() if binary else enc
    counts = count_tokens_sharded(enc.token_ids, labels[enc.doc_ids()], labels,
                                  num_classes=num_classes, vocab_size=len(vocab), mesh=mesh)
    check_class_counts(counts["class_count"], class_names)
    params = fit_params(counts, kind, alpha=alpha, fit_prior=fit_prior, norm=norm)
    params = {"weight": params["weight"], "bias": params["bias"]}
    return TextNBModel(vocab, params, kind, binary, bool(stop_words), strip_html, class_names, counts)
