"""Naive Bayes as counting kernels: multinomial, Bernoulli, complement and Gaussian, and a text classifier.

    from jaxml import naive_bayes as nb
    counts = nb.count_tokens(ids, labels[doc], labels, num_classes=C, vocab_size=V)   # i32[C, V], i32[C]
    params = nb.fit_params(counts, "multinomial", alpha=1.0)                          # W: f[C, V], b: f[C]
    model = nb.fit_text_classifier(texts, labels, num_classes=2, ngram_range=(1, 2), binary=True)

Fitting is integer counting, so batches and devices add exactly (``partial_fit``, one ``psum``); every
discrete variant then scores ``s = x W^T + b`` in log space, ``log p(c | d) = s - logsumexp_c s``.

Modules: ``counts`` (token / matrix counts, ``partial_fit``, sharded counting), ``classifier`` (priors,
the multinomial / Bernoulli / complement fits, scores and prediction), ``gaussian`` (Gaussian NB with exact
merges), ``text`` (tokenizer, n-gram ``Vocabulary``, ``EncodedCorpus``; ``stopwords_en.txt`` beside it),
``model`` (``TextNBModel``: tokenize -> vocabulary -> count -> fit -> predict, saved as one ``.npz``);
beyond counting: ``ratio`` (the NB log-count ratio), ``sparse`` (documents as chunks of term ids: gather +
segment-sum scores), ``nbsvm`` (NBSVM / NB-LR of Wang & Manning 2012: a sharded L-BFGS fit of a linear model
over ratio-scaled presence features, ``fit_nbsvm``; ``fit_text_nbsvm`` makes a ``TextNBModel`` of kind
``nbsvm``).
"""
from jaxml.naive_bayes import nbsvm, sparse, text
from jaxml.naive_bayes.classifier import (
    KINDS,
    class_log_prior,
    fit_params,
    joint_log_likelihood,
    log_proba_from_scores,
    predict,
    predict_log_proba,
    token_joint_log_likelihood,
)
from jaxml.naive_bayes.counts import (
    add_counts,
    check_class_counts,
    count_matrix,
    count_tokens,
    count_tokens_sharded,
    partial_fit,
)
from jaxml.naive_bayes.gaussian import (
    gaussian_joint_log_likelihood,
    gaussian_params,
    gaussian_stats,
    merge_gaussian_stats,
)
from jaxml.naive_bayes.model import TextNBModel, fit_text_classifier
from jaxml.naive_bayes.nbsvm import classifier_params, fit_nbsvm, fit_text_nbsvm
from jaxml.naive_bayes.ratio import log_count_ratio

__all__ = ["KINDS", "TextNBModel", "add_counts", "check_class_counts", "class_log_prior", "count_matrix",
           "count_tokens", "count_tokens_sharded", "fit_params", "fit_text_classifier",
           "gaussian_joint_log_likelihood", "gaussian_params", "gaussian_stats", "joint_log_likelihood",
           "log_proba_from_scores", "merge_gaussian_stats", "partial_fit", "predict", "predict_log_proba",
           "text", "token_joint_log_likelihood",
           "nbsvm", "sparse", "classifier_params", "fit_nbsvm", "fit_text_nbsvm", "log_count_ratio"]
