#!/usr/bin/env python3
"""export_toxicity_model.py: exports the alt-profanity-check 1.9.1 classifier to the plain file
headpursuit reads (host/eval/toxicity.c), and writes the reference fixture its test compares with.

Run it through scripts/export_toxicity_model.sh, which makes a throw-away virtual environment
with the pinned packages (alt-profanity-check==1.9.1, scikit-learn==1.9.1, joblib==1.6.0).

What is checked here, from the loaded objects rather than from documentation:
  - the vectoriser is a TfidfVectorizer with analyzer 'word', token_pattern (?u)\\b\\w\\w+\\b,
    lowercase, no accent stripping, unigrams, English stop words (none of which is in the
    vocabulary, so dropping out-of-vocabulary tokens drops them too), smooth idf, l2 norm,
    raw term counts (no sublinear tf, not binary);
  - the classifier is a CalibratedClassifierCV(method='sigmoid') over LinearSVC folds with
    classes [0, 1]; predict_prob = mean over folds of expit(-(a * (w.x + c) + b)).

The exported file (little-endian), read by hp_toxclf_load:
  magic "HPTOXCL1"; u32 source_len; source (UTF-8, no NUL)
  u32 V (vocabulary), K (folds), R (\\w ranges), M (lowercase entries), I (case-ignorable
      ranges), C (cased ranges)
  V x (u8 len, UTF-8 bytes)                 the term of column j, in column order
  f32 idf[V]
  K x (f64 intercept, f64 a, f64 b, f32 coef[V])
  R x (u32 first, u32 last)                 code points Python's re matches with \\w
  M x (u32 cp, u32 n, u32 out[2])           str.lower() of cp when it differs from cp
  I x (u32 first, u32 last), C x (u32 first, u32 last)
                                            the two properties str.lower() uses for the Greek
                                            final sigma (probed from str.lower() itself; 'cased'
                                            only for characters that are not case-ignorable,
                                            the only ones Python asks about)
  u32 crc32 (zlib) of every byte before it

The fixture (JSONL, {"text": ..., "prob": ...}) holds deterministic strings: vocabulary words in
several cases, profanity, accents, Greek with final sigma, the Kelvin sign and dotted capital I,
fullwidth letters, curly quotes, dashes, emoji, CJK, combining marks, digits, underscores, empty
and very long strings; prob is the package's predict_prob, printed with repr (round-trips).
"""
import argparse
import json
import os
import random
import re
import struct
import sys
import unicodedata
import zlib
from importlib import metadata

import numpy as np
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.svm import LinearSVC

from profanity_check import profanity_check as pc

MAXCP = 0x110000


def ranges(pred):
    out, start = [], None
    for c in range(MAXCP):
        if pred(c):
            if start is None:
                start = c
        elif start is not None:
            out.append((start, c - 1))
            start = None
    if start is not None:
        out.append((start, MAXCP - 1))
    return out


def final_sigma(s):
    return s.lower()[-1] == "\u03c2"


def check_objects(v, m):
    assert isinstance(v, TfidfVectorizer), type(v)
    p = v.get_params()
    want = dict(analyzer="word", token_pattern=r"(?u)\b\w\w+\b", lowercase=True, strip_accents=None,
                ngram_range=(1, 1), stop_words="english", smooth_idf=True, norm="l2", use_idf=True,
                sublinear_tf=False, binary=False, preprocessor=None, tokenizer=None)
    for k, val in want.items():
        assert p[k] == val, (k, p[k], val)
    assert not (ENGLISH_STOP_WORDS & set(v.vocabulary_)), "a stop word is in the vocabulary"
    assert isinstance(m, CalibratedClassifierCV) and m.method == "sigmoid", m
    assert list(m.classes_) == [0, 1], m.classes_
    for cc in m.calibrated_classifiers_:
        e = cc.estimator
        assert isinstance(e, LinearSVC) and e.coef_.shape == (1, len(v.vocabulary_)), e
        assert list(e.classes_) == [0, 1] and len(cc.calibrators) == 1
        assert type(cc.calibrators[0]).__name__ == "_SigmoidCalibration"


def export(v, m, path):
    V = len(v.vocabulary_)
    terms = [None] * V
    for t, j in v.vocabulary_.items():
        terms[j] = t
    assert all(t is not None for t in terms)
    word = re.compile(r"\w")
    wr = ranges(lambda c: word.match(chr(c)) is not None)
    lower = []
    for c in range(MAXCP):
        lo = chr(c).lower()
        if lo != chr(c):
            assert 1 <= len(lo) <= 2, (hex(c), lo)
            cps = [ord(x) for x in lo] + [0] * (2 - len(lo))
            lower.append((c, len(lo), cps))
    # Final sigma context (CPython's handle_capital_sigma): a non-ignorable c directly before a
    # sigma makes it final iff c is cased; an ignorable one is skipped. c + SIGMA alone is final
    # iff c is cased and not ignorable; 'A' + c + SIGMA is final iff c is ignorable or cased.
    sig = "\u03a3"
    t1 = [final_sigma(chr(c) + sig) if not 0xD800 <= c <= 0xDFFF else False for c in range(MAXCP)]
    t2 = [final_sigma("A" + chr(c) + sig) if not 0xD800 <= c <= 0xDFFF else False for c in range(MAXCP)]
    ign = ranges(lambda c: t2[c] and not t1[c])
    cased = ranges(lambda c: t1[c])
    # The same two properties must also decide the look-ahead: SIGMA + c is non-final iff c is
    # cased (and not ignorable), and SIGMA + ignorable + 'a' is non-final.
    for c in range(MAXCP):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ig = t2[c] and not t1[c]
        after = ("A" + sig + chr(c) + "a").lower()[1] == "\u03c2"
        assert after == (not ig and not t1[c]), hex(c)

    src = (f"alt-profanity-check {metadata.version('alt-profanity-check')}, "
           f"scikit-learn {sklearn.__version__}, Python {sys.version.split()[0]} "
           f"(Unicode {unicodedata.unidata_version})").encode()
    b = bytearray(b"HPTOXCL1")
    b += struct.pack("<I", len(src)) + src
    K = len(m.calibrated_classifiers_)
    b += struct.pack("<6I", V, K, len(wr), len(lower), len(ign), len(cased))
    for t in terms:
        tb = t.encode("utf-8")
        assert 0 < len(tb) < 256
        b += struct.pack("<B", len(tb)) + tb
    b += np.asarray(v.idf_, dtype="<f4").tobytes()
    for cc in m.calibrated_classifiers_:
        e, cal = cc.estimator, cc.calibrators[0]
        b += struct.pack("<3d", float(e.intercept_[0]), float(cal.a_), float(cal.b_))
        b += np.asarray(e.coef_[0], dtype="<f4").tobytes()
    for lo, hi in wr:
        b += struct.pack("<2I", lo, hi)
    for c, n, cps in lower:
        b += struct.pack("<4I", c, n, *cps)
    for lo, hi in ign + cased:
        b += struct.pack("<2I", lo, hi)
    b += struct.pack("<I", zlib.crc32(bytes(b)) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b)
    print(f"wrote {path}: {len(b)} bytes, V={V} K={K} word ranges={len(wr)} lower={len(lower)} "
          f"ignorable={len(ign)} cased={len(cased)}", file=sys.stderr)
    return terms


PIECES = [
    "\u201cquoted\u201d", "\u2018single\u2019", "\u2014", "\u2013", "...", "!!", "?", "\u2026",
    "caf\u00e9", "na\u00efve", "JOS\u00c9", "Pok\u00e9mon", "BEYONC\u00c9", "pok\u00e9mon",
    "\u0395\u03a4\u0397\u03a4\u0397\u03a3", "\u039c\u0395\u039b", "\u03bc\u03b5\u03bb",
    "\u03b5\u03c4\u03b7\u03c4\u03b7\u03c3", "\u03a3\u0391", "\u03a3",
    "\u212aill", "\u0130stanbul", "\u0130", "\uff46\uff55\uff43\uff4b", "\uff26\uff35\uff23\uff2b",
    "\U0001f600", "\U0001f595", "\u7adc\u9f99", "\u9023\u7d61", "\u8ff7\u60d1",
    "e\u0301", "a\u0308b", "x\u200dy", "\u00a0", "\t", "\n", "  ", "_", "__init__", "snake_case",
    "12", "3rd", "\u00b2", "\u0663\u0664", "\u2160\u2161", "don't", "won\u2019t", "e-mail",
    "http://example.com/a_b", "#hashtag", "@user", "<b>", "&amp;", "\u00df", "STRASSE",
    "\u1e9e", "\u01c5", "\u1f88", "dal\u03b1lus", "d\u03b1lus", "\u03b2command",
]


def fixture_strings(terms, profane, seed, n):
    rng = random.Random(seed)
    common = [t for t in terms if t.isascii()]
    out = ["", " ", "a", "I", "ok", "\u03a3", "fuck", "FUCK", "Fuck you", "you are nice",
           "\u0130stanbul is a city", "\u212aILL them", "\u0395\u03a4\u0397\u03a4\u0397\u03a3 \u039c\u0395\u039b"]
    cases = [str, str.upper, str.title, str.capitalize]
    seps = [" ", " ", " ", ", ", "-", "\u2014", "\u2019", "_", "", ".\n", "\u00a0", "/"]
    while len(out) < n:
        words = []
        for _ in range(rng.randint(1, 24)):
            r = rng.random()
            if r < 0.45:
                w = rng.choice(common)
            elif r < 0.65:
                w = rng.choice(profane)
            elif r < 0.85:
                w = rng.choice(PIECES)
            else:
                w = "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff),
                                            rng.randint(0x3000, 0xffef), rng.randint(0x10000, 0x1faff)]))
                            for _ in range(rng.randint(1, 6)))
                w = "".join(ch for ch in w if not 0xD800 <= ord(ch) <= 0xDFFF)
            w = rng.choice(cases)(w)
            words.append(w + rng.choice(seps))
        out.append("".join(words).strip() if rng.random() < 0.8 else "".join(words))
    for k, size in enumerate([5000, 20000, 60000]):  # very long documents
        parts = []
        while sum(map(len, parts)) < size:
            parts.append(rng.choice(common + profane + PIECES) + " ")
        out.append("".join(parts))
    out.append("fuck " * 4000)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="classifier file to write")
    ap.add_argument("--fixture", required=True, help="reference JSONL to write")
    ap.add_argument("--wordlist", required=True, help="better-profanity profanity_wordlist.txt")
    ap.add_argument("--n", type=int, default=2500)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    v, m = pc.vectorizer, pc.model
    check_objects(v, m)
    terms = export(v, m, a.out)
    with open(a.wordlist, encoding="utf-8") as f:
        profane = [w.strip() for w in f if w.strip()]
    texts = fixture_strings(terms, profane, a.seed, a.n)
    probs = pc.predict_prob(texts)
    with open(a.fixture, "w", encoding="utf-8") as f:
        for t, p in zip(texts, probs):
            f.write(json.dumps({"text": t, "prob": float(p)}, ensure_ascii=False) + "\n")
    print(f"wrote {a.fixture}: {len(texts)} strings, {int((probs >= 0.5).sum())} with prob >= 0.5",
          file=sys.stderr)


if __name__ == "__main__":
    main()
