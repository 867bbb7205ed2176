"""Stage 3b: the learned reader. Scores a sentence (or a turn, or a question with its answer)
against every step (done or missed), every outcome and "other".

It is trained from the playbook's own `examples.jsonl`, so a team's playbook gets its own reader.
The features are the sentence's vector from the encoder (what it is about) and TF-IDF weights of
its words, word pairs and negation-scoped words (`NOT_ask` in "never really asked": whether it
happened); the head is scikit-learn's multinomial logistic regression. Scoring needs only numpy;
scikit-learn is imported to train. The head and the examples' vectors are derived files in the
cache folder, keyed by the hashes of the examples, the encoder and this module's feature version:
built when missing or stale, and rebuilt (never trusted) when they cannot be read back whole.
This module reads the playbook's examples and the cache folder; it knows nothing of transcripts.

Touches: the cache folder (`$DEBRIEF_CACHE`): the trained head and the example vectors, written whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from debrief.paths import cache_dir, write_whole
from debrief.playbook import Example, Playbook

log = logging.getLogger(__name__)

FEATURES_VERSION = 2  # change it whenever the features or the training change: old heads go stale
DENSE_WEIGHT = 0.5    # the vector's weight beside the (L2-normalised) word weights
C = 16.0              # inverse regularisation of the logistic regression
SPEAKER_TAG = re.compile(r"^\s*(REP|PROSPECT|SPEAKER[ _]?\w+|NOTE)\s*:\s*", re.IGNORECASE | re.MULTILINE)
WORD = re.compile(r"[a-z0-9$%]+(?:'[a-z]+)?")
NEGATORS = {"no", "not", "never", "nothing", "none", "nobody", "without", "nor", "cannot", "didnt",
            "didn", "dont", "wasnt", "isnt", "hasnt", "havent", "couldnt", "wouldnt", "forgot",
            "skipped", "missed", "failed", "neither", "zero", "unclear", "unknown",
            # words that say a thing is not known: "still a mystery who signs", "fuzzy on the money"
            "mystery", "unsure", "unaware", "unanswered", "vague", "fuzzy", "murky"}
SCOPE_ENDS = {"but", "and", "so", "because", "though", "although", "which", "then"}
SCOPE = 4  # words after a negator that it colours
CONTRACTIONS = (("n't", " not"), ("can't", "can not"), ("won't", "will not"), ("'re", " are"),
                ("'ve", " have"), ("'ll", " will"), ("'m", " am"), ("'d", " would"))


def label_of(example: Example) -> str:
    """The class of an example: "step:polarity" for a step, else the outcome or "other"."""
    return f"{example.label}:{example.polarity}" if example.polarity else example.label


def encoder_text(text: str) -> str:
    """What the encoder reads: speaker tags dropped, one line."""
    return " ".join(SPEAKER_TAG.sub(" ", text).split())


def terms(text: str) -> list[str]:
    """The word features of a text: words, word pairs, negation-scoped words, number shapes."""
    lowered = text.lower().replace("\u2019", "'")
    speakers = [m.group(1).lower() for m in SPEAKER_TAG.finditer(lowered)]
    lowered = SPEAKER_TAG.sub(" ", lowered)
    for short, long in CONTRACTIONS:
        lowered = lowered.replace(short, long)
    words = WORD.findall(lowered)
    out = [f"@{s}" for s in speakers]
    scope = 0
    for i, word in enumerate(words):
        if any(ch.isdigit() for ch in word):
            out.append("<num>")
            word = "<num>" if not word.startswith("$") else "<money>"
        out.append(word)
        if i:
            out.append(f"{words[i - 1]}_{word}")
        if scope and word not in NEGATORS:
            out.append(f"NOT_{word}")
            scope -= 1
        if word in NEGATORS:
            scope = SCOPE
        elif word in SCOPE_ENDS:
            scope = 0
    if not out:
        out.append("<empty>")
    return out


@dataclass(frozen=True)
class Head:
    """A trained reader: the classes, the word vocabulary with its IDF weights, and the weights."""

    classes: tuple[str, ...]
    vocabulary: dict[str, int]
    idf: np.ndarray      # (words,)
    dense: np.ndarray    # (classes, encoder dim)
    sparse: np.ndarray   # (classes, words)
    bias: np.ndarray     # (classes,)
    key: str

    def word_weights(self, items: list[tuple[str, list[str]]]) -> np.ndarray:
        """TF-IDF rows as scikit-learn's TfidfVectorizer(sublinear_tf=True) computes them."""
        rows = np.zeros((len(items), len(self.vocabulary)), dtype=np.float32)
        for r, item in enumerate(items):
            counts = Counter(t for t in item_terms(item) if t in self.vocabulary)
            for term, count in counts.items():
                j = self.vocabulary[term]
                rows[r, j] = (1.0 + math.log(count)) * self.idf[j]
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.maximum(norms, 1e-12)

    def probabilities(self, vectors: np.ndarray, items: list[tuple[str, list[str]]]) -> np.ndarray:
        """(texts, classes) probabilities from the texts' encoder vectors, their words and the
        pattern matches in them."""
        logits = DENSE_WEIGHT * vectors @ self.dense.T + self.word_weights(items) @ self.sparse.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


class Reader:
    """Scores texts with a playbook's trained head and the encoder it was trained with."""

    def __init__(self, head: Head, encoder, *, from_cache: bool = False) -> None:
        self.head = head
        self.encoder = encoder
        self.classes = head.classes
        self.from_cache = from_cache

    def probabilities(self, texts: list[str], rule_terms: list[list[str]] | None = None) -> np.ndarray:
        """(texts, classes) probabilities; `rule_terms` are the pattern matches in each text."""
        if not texts:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        items = list(zip(texts, rule_terms or [[] for _ in texts]))
        return self.head.probabilities(self.encoder.encode([encoder_text(t) for t in texts]), items)


def head_key(playbook: Playbook, encoder) -> str:
    """What a trained head depends on: this module's features, the encoder, the examples, and the
    patterns and negation cues (their matches are features too)."""
    rules = hashlib.sha256(repr((playbook.patterns, playbook.negation)).encode()).hexdigest()
    parts = [str(FEATURES_VERSION), str(DENSE_WEIGHT), str(C), encoder.fingerprint, playbook.examples_digest, rules]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def item_terms(item: tuple[str, list[str]]) -> list[str]:
    """A text's word features and the pattern matches in it."""
    text, rules = item
    return terms(text) + list(rules)


def load_reader(playbook: Playbook, encoder, *, rule_terms: Callable[[str], list[str]] | None = None,
                progress: Callable[[int, int], None] | None = None, force: bool = False) -> Reader | None:
    """The playbook's reader, from the cache when it is there and whole, else trained now.

    None when the playbook has no examples: the rules alone then read the transcript.
    """
    if not playbook.examples:
        return None
    key = head_key(playbook, encoder)
    path = cache_dir() / "readers" / f"{key}.npz"
    head = None if force else _read_head(path, key)
    if head is not None:
        return Reader(head, encoder, from_cache=True)
    log.warning("%s: training the reader on %d examples (once; it is cached)", playbook.source, len(playbook.examples))
    head = train(playbook, encoder, rule_terms=rule_terms, progress=progress)
    _write_head(path, head)
    return Reader(head, encoder)


def train(playbook: Playbook, encoder, *, rule_terms: Callable[[str], list[str]] | None = None,
          progress: Callable[[int, int], None] | None = None) -> Head:
    """Fit the head on the playbook's examples (vectors come from the cache where it has them)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    examples = playbook.examples
    texts = [e.text for e in examples]
    labels = [label_of(e) for e in examples]
    vectors = example_vectors(encoder, texts, progress=progress)
    items = [(t, rule_terms(t) if rule_terms else []) for t in texts]
    tfidf = TfidfVectorizer(analyzer=item_terms, sublinear_tf=True, min_df=2, dtype=np.float32)
    words = tfidf.fit_transform(items)
    from scipy.sparse import csr_matrix, hstack

    features = hstack([csr_matrix(DENSE_WEIGHT * vectors), words]).tocsr()
    model = LogisticRegression(C=C, max_iter=3000)
    model.fit(features, labels)
    dim = vectors.shape[1]
    weights = model.coef_.astype(np.float32)
    return Head(tuple(str(c) for c in model.classes_), {t: int(i) for t, i in tfidf.vocabulary_.items()},
                tfidf.idf_.astype(np.float32), weights[:, :dim].copy(), weights[:, dim:].copy(),
                model.intercept_.astype(np.float32), head_key(playbook, encoder))


def example_vectors(encoder, texts: list[str], *, progress=None) -> np.ndarray:
    """The encoder's vectors for `texts`, reusing the ones cached for this encoder."""
    path = cache_dir() / "vectors" / f"{encoder.fingerprint}.npz"
    cached = _read_vectors(path, encoder.dim)
    digests = [hashlib.sha1(encoder_text(t).encode()).hexdigest() for t in texts]
    # by length, so that each batch pads little (about a quarter less time than in the examples' order)
    missing = sorted({d: t for d, t in zip(digests, texts) if d not in cached}.items(), key=lambda item: len(item[1]))
    step = 64
    for at in range(0, len(missing), step):
        chunk = missing[at:at + step]
        for (digest, _), row in zip(chunk, encoder.encode([encoder_text(t) for _, t in chunk])):
            cached[digest] = row
        if progress:
            progress(min(at + step, len(missing)), len(missing))
    if missing:
        _write_vectors(path, cached)
    elif progress:
        progress(1, 1)
    return np.stack([cached[d] for d in digests]) if texts else np.zeros((0, encoder.dim), np.float32)


def _read_head(path: Path, key: str) -> Head | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            head = Head(tuple(meta["classes"]), {t: i for i, t in enumerate(meta["words"])},
                        data["idf"], data["dense"], data["sparse"], data["bias"], meta["key"])
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: numpy, zipfile and json raise many kinds
        log.warning("%s: the cached reader is unreadable (%s); training it again", path, type(exc).__name__)
        return None
    n, words = len(head.classes), len(head.vocabulary)
    shapes_ok = (head.key == key and head.idf.shape == (words,) and head.sparse.shape == (n, words)
                 and head.bias.shape == (n,) and head.dense.shape[0] == n
                 and all(np.isfinite(a).all() for a in (head.idf, head.dense, head.sparse, head.bias)))
    if not shapes_ok:
        log.warning("%s: the cached reader does not match its key; training it again", path)
        return None
    return head


def _write_head(path: Path, head: Head) -> None:
    words = [t for t, _ in sorted(head.vocabulary.items(), key=lambda item: item[1])]
    meta = json.dumps({"classes": list(head.classes), "words": words, "key": head.key})
    _save(path, meta=np.array(meta), idf=head.idf, dense=head.dense, sparse=head.sparse, bias=head.bias)


def _read_vectors(path: Path, dim: int) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            digests, rows = data["digests"], data["rows"]
        if rows.shape != (len(digests), dim) or not np.isfinite(rows).all():
            raise ValueError("shape")
        return {str(d): r for d, r in zip(digests, rows)}
    except FileNotFoundError:
        return {}
    except Exception as exc:
        log.warning("%s: the cached sentence vectors are unreadable (%s); encoding again", path, type(exc).__name__)
        return {}


def _write_vectors(path: Path, vectors: dict[str, np.ndarray]) -> None:
    digests = sorted(vectors)
    _save(path, digests=np.array(digests), rows=np.stack([vectors[d] for d in digests]).astype(np.float32))


def _save(path: Path, **arrays) -> None:
    write_whole(path, lambda out: np.savez(out, **arrays), "the reader's cache")
