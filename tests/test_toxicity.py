#!/usr/bin/env python3
"""The C toxicity classifier against the package it was exported from (standard library only;
exit 0 pass, 1 fail, 77 skip).

  - `headpursuit toxicity --file tests/fixtures/toxicity/reference.jsonl` reproduces every
    predict_prob of alt-profanity-check 1.9.1 (2,504 strings: Unicode, accents, Greek final
    sigma, Kelvin sign, dotted I, curly quotes, dashes, empty and very long strings) within TOL,
    and the same labels at 0.5;
  - a copy of the classifier with one weight changed (checksum rewritten so that it loads) FAILS
    that comparison: the comparison can see a wrong weight;
  - a copy with a flipped byte and the old checksum is refused, naming the file;
  - bad JSONL lines and missing fields are errors naming the file and line; eval --task toxicity
    refuses bad inputs and options (exit 2) before loading any model;
  - the lexical metric (--words: whole-word, ASCII-case-insensitive occurrences of the held-out
    toxic words, and the word count) equals an independent Python count on every fixture string.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("HP_BIN", os.path.join(ROOT, "headpursuit"))
CLF = os.path.join(ROOT, "data", "toxicity", "profanity_check.bin")
REF = os.path.join(ROOT, "tests", "fixtures", "toxicity", "reference.jsonl")
# float32 weights and idf (the package holds float64): measured max error 1e-8; 1e-6 is what
# the brief asks and is far below any label-relevant change.
TOL = 1e-6
fails = 0


def check(cond, msg):
    global fails
    print(("ok    " if cond else "FAIL  ") + msg)
    if not cond:
        fails += 1


def score(clf, path, field="text"):
    p = subprocess.run([BIN, "toxicity", "--classifier", clf, "--file", path, "--field", field],
                       capture_output=True, text=True)
    return p, [json.loads(l) for l in p.stdout.splitlines()] if p.returncode == 0 else []


def compare(ref, got):
    worst, at = 0.0, -1
    for i, (r, g) in enumerate(zip(ref, got)):
        err = abs(r["prob"] - g["prob"])
        if not err <= worst and not (err == err and err <= worst):  # NaN never passes
            worst, at = err if err == err else float("inf"), i
    flips = sum(1 for r, g in zip(ref, got)
                if (r["prob"] >= 0.5) != g["toxic"] and abs(r["prob"] - 0.5) > TOL)
    return worst, at, flips


def lexicon(words, text):
    """Held-out hits and words of text, on its UTF-8 bytes: a word byte is an ASCII letter or
    digit or any byte >= 0x80; a match may not extend a word on either side."""
    t = text.encode("utf-8")
    low = bytes(c + 32 if 65 <= c <= 90 else c for c in t)
    wb = lambda c: c >= 0x80 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122
    n_words = sum(1 for i, c in enumerate(t) if wb(c) and (i == 0 or not wb(t[i - 1])))
    hits = 0
    for w in words:
        wl = bytes(c + 32 if 65 <= c <= 90 else c for c in w.encode("utf-8"))
        i = low.find(wl)
        while i >= 0:
            j = i + len(wl)
            if not (i > 0 and wb(t[i - 1]) and wb(wl[0])) and not (j < len(t) and wb(t[j]) and wb(wl[-1])):
                hits += 1
            i = low.find(wl, i + 1)
    return hits, n_words


def term_offsets(blob):
    """Byte offsets of the term table, idf and fold 0's weights, and the terms (file layout in
    scripts/export_toxicity_model.py)."""
    off = 8
    (slen,) = struct.unpack_from("<I", blob, off)
    off += 4 + slen
    V, K = struct.unpack_from("<2I", blob, off)[:2]
    off += 24
    terms = []
    for _ in range(V):
        n = blob[off]
        terms.append(blob[off + 1:off + 1 + n].decode())
        off += 1 + n
    idf_off = off
    fold0 = idf_off + 4 * V + 24
    return terms, fold0


def main():
    if not os.access(BIN, os.X_OK):
        print(f"skipped: {BIN} is not built (run make)")
        return 77
    ref = [json.loads(l) for l in open(REF, encoding="utf-8")]
    p, got = score(CLF, REF)
    check(p.returncode == 0, f"scores the fixture (exit {p.returncode}) {p.stderr.strip()[-300:]}")
    check(len(got) == len(ref), f"{len(got)} scores for {len(ref)} strings")
    worst, at, flips = compare(ref, got)
    check(worst <= TOL, f"max |C - predict_prob| = {worst:.3g} (string {at}) <= {TOL}")
    check(flips == 0, f"{flips} labels differ at 0.5")
    print(f"      {sum(r['prob'] >= 0.5 for r in ref)} of {len(ref)} fixture strings are toxic")

    held_path = os.path.join(ROOT, "wordlists", "toxic_heldout.txt")
    held = [l.strip() for l in open(held_path, encoding="utf-8") if l.strip() and not l.startswith("#")]
    p = subprocess.run([BIN, "toxicity", "--file", REF, "--words", held_path], capture_output=True, text=True)
    lex = [json.loads(l) for l in p.stdout.splitlines()]
    want = [lexicon(held, r["text"]) for r in ref]
    diff = [i for i, (g, w) in enumerate(zip(lex, want)) if (g["hits"], g["words"]) != w]
    check(p.returncode == 0 and len(lex) == len(ref) and not diff,
          f"--words: held-out hits and word counts match Python on {len(ref)} strings "
          f"({sum(w[0] for w in want)} hits; differing: {diff[:5]})")

    with tempfile.TemporaryDirectory() as tmp:
        blob = bytearray(open(CLF, "rb").read())
        terms, fold0 = term_offsets(blob)
        # Perturb fold 0's weight of a term that many fixture strings contain, by 1e-3 relative
        # to the weight's scale: far below anything a reader would notice by eye.
        j = terms.index("fuck")
        (w,) = struct.unpack_from("<f", blob, fold0 + 4 * j)
        bad = bytearray(blob)
        struct.pack_into("<f", bad, fold0 + 4 * j, w + 0.01)
        struct.pack_into("<I", bad, len(bad) - 4, zlib.crc32(bytes(bad[:-4])) & 0xFFFFFFFF)
        pert = os.path.join(tmp, "perturbed.bin")
        open(pert, "wb").write(bad)
        p2, got2 = score(pert, REF)
        w2, at2, _ = compare(ref, got2)
        check(p2.returncode == 0 and w2 > TOL,
              f"weight 'fuck' {w:.4f} -> {w + 0.01:.4f} in fold 0 fails the fixture (max error {w2:.3g} > {TOL})")

        dam = bytearray(blob)
        dam[fold0 + 4 * j] ^= 0x01
        dpath = os.path.join(tmp, "damaged.bin")
        open(dpath, "wb").write(dam)
        p3, _ = score(dpath, REF)
        check(p3.returncode == 1 and "checksum mismatch" in p3.stderr and dpath in p3.stderr,
              f"a flipped byte is refused: {p3.stderr.strip()}")
        trunc = os.path.join(tmp, "truncated.bin")
        open(trunc, "wb").write(blob[:1000])
        p4, _ = score(trunc, REF)
        check(p4.returncode == 1 and trunc in p4.stderr, f"a truncated file is refused: {p4.stderr.strip()}")

        rows = os.path.join(tmp, "rows.jsonl")
        with open(rows, "w") as f:
            f.write('{"prompt": {"text": "what the hell"}}\n\n{"prompt": {"text": "nice day"}}\n')
        p5, got5 = score(CLF, rows, "prompt.text")
        check(p5.returncode == 0 and [g["line"] for g in got5] == [1, 3],
              f"dotted --field, blank line skipped: lines {[g.get('line') for g in got5]}")
        for text, want in [('{"text": "ok"}\n{"text": \n', ":2: not valid JSON"),
                           ('{"text": "ok"}\n{"other": "x"}\n', ':2: no field "text"'),
                           ('{"text": 3}\n', ':1: "text" is not a string')]:
            with open(rows, "w") as f:
                f.write(text)
            p6, _ = score(CLF, rows)
            check(p6.returncode == 1 and (rows + want) in p6.stderr, f"bad line: {p6.stderr.strip()}")
        p7 = subprocess.run([BIN, "toxicity", "--text", "a", "--file", rows], capture_output=True, text=True)
        check(p7.returncode == 2, "--text and --file together are refused (exit 2)")
        # eval --task toxicity checks its inputs before any model loads (the model does not exist).
        nomodel = os.path.join(tmp, "no-such-model.gguf")
        with open(rows, "w") as f:
            f.write('{"filename": "a", "begin": 0, "end": 1, "challenging": true, "prompt": {"text": "x"}}\n[]\n')
        tet = os.path.join(ROOT, "tests", "fixtures", "toxicity", "tet.json")
        for args, want in [(["--data", rows], rows + ":2: expected a JSON object"),
                           (["--data", tet, "--min-prompt-toxicity", "0.5"], "TET records have no"),
                           (["--data", tet, "--threshold", "2"], "--threshold '2'"),
                           (["--data", tet, "--heldout", os.path.join(tmp, "none.txt")], "--heldout"),
                           ([], "need --data")]:
            pe = subprocess.run([BIN, "eval", nomodel, "--task", "toxicity", *args], capture_output=True, text=True)
            check(pe.returncode == 2 and want in pe.stderr, f"eval --task toxicity {' '.join(args)}: exit 2, "
                  f"'{pe.stderr.strip()[-160:]}'")
        p8 = subprocess.run([BIN, "toxicity", "--help"], capture_output=True, text=True)
        check(p8.returncode == 0 and "not Perspective" in p8.stdout, "--help names the classifier's limits")
    print(f"{fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
