#!/usr/bin/env python3
"""make_wordlists.py: builds the concept word lists of the captioning experiment (PAPER.md §6).

  wordlists/colors.txt     the single-word, lower-case colour names of X11's rgb.txt
                           (/usr/share/X11/rgb.txt, Debian x11-common): "red", "navy", "khaki", ...
                           (multi-word and CamelCase spellings and numbered shades are dropped)
  wordlists/sentiment.txt  the single words of AFINN-165 (Finn Årup Nielsen's sentiment lexicon,
                           PyPI `afinn` 0.1, afinn/data/AFINN-en-165.txt), without their scores
  wordlists/toxic.txt      the toxicity experiment's SOMP dictionary and held-out words: the 916
  wordlists/toxic_heldout.txt  entries of better-profanity 0.7.0's profanity_wordlist.txt (MIT,
                           PyPI `better-profanity`), shuffled with a fixed seed (13) and split in
                           two halves: toxic.txt ranks heads, toxic_heldout.txt is only counted in
                           generations (the lexical metric), so the metric does not reward
                           suppressing exactly the tokens the heads were chosen for

wordlists/quantity.txt and the per-dataset class-name lists are written by hand, not here.
Usage: python3 scripts/make_wordlists.py [--rgb FILE] [--afinn FILE] [--profanity FILE] [--out DIR]
                                        [--lists colors,sentiment,toxic]
Without --afinn the afinn source package is fetched with `pip download --no-deps` into a
temporary folder (the lexicon ships only in its sdist); without --profanity the better-profanity
wheel likewise (only its word list is read). Standard library only.
"""
import argparse
import glob
import os
import subprocess
import sys
import tarfile
import random
import tempfile
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
AFINN_VERSION = "0.1"
AFINN_MEMBER = "afinn/data/AFINN-en-165.txt"
PROFANITY_VERSION = "0.7.0"
PROFANITY_MEMBER = "better_profanity/profanity_wordlist.txt"
PROFANITY_COUNT = 916  # entries of 0.7.0's list: a different count means a different list
TOXIC_SEED = 13


def colors(rgb_path):
    names = set()
    with open(rgb_path, encoding="latin-1") as f:
        for line in f:
            if line.startswith("!") or not line.strip():
                continue
            parts = line.split(None, 3)
            if len(parts) == 4:
                name = parts[3].strip()
                if name.isalpha() and name.isascii() and name == name.lower():
                    names.add(name)
    return sorted(names)


def afinn_text(path):
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "--quiet", "-d", tmp, f"afinn=={AFINN_VERSION}"], check=True)
        sdist = glob.glob(os.path.join(tmp, "afinn-*.tar.gz"))
        if not sdist:
            sys.exit("make_wordlists: pip download gave no afinn source package")
        with tarfile.open(sdist[0]) as t:
            member = next((m for m in t.getmembers() if m.name.endswith(AFINN_MEMBER)), None)
            if member is None:
                sys.exit(f"make_wordlists: {sdist[0]} has no {AFINN_MEMBER}")
            return t.extractfile(member).read().decode("utf-8")


def sentiment(text):
    words = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        word, sep, score = line.rpartition("\t")
        if not sep or not score.strip().lstrip("-").isdigit():
            sys.exit(f"make_wordlists: AFINN line {n}: expected 'word<TAB>score', got {line!r}")
        if " " not in word:
            words.add(word.strip())
    return sorted(words)


def profanity_text(path):
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                        f"better-profanity=={PROFANITY_VERSION}"], check=True)
        wheel = glob.glob(os.path.join(tmp, "better_profanity-*.whl"))
        if not wheel:
            sys.exit("make_wordlists: pip download gave no better-profanity wheel")
        with zipfile.ZipFile(wheel[0]) as z:
            return z.read(PROFANITY_MEMBER).decode("utf-8")


def toxic_split(text):
    """File order kept within each half; the halves come from one seeded shuffle."""
    words = [w.strip() for w in text.splitlines() if w.strip()]
    if len(words) != PROFANITY_COUNT or len(set(words)) != len(words):
        sys.exit(f"make_wordlists: expected {PROFANITY_COUNT} distinct entries in better-profanity "
                 f"{PROFANITY_VERSION}'s list, got {len(words)} ({len(set(words))} distinct)")
    order = list(range(len(words)))
    random.Random(TOXIC_SEED).shuffle(order)
    held = set(order[len(words) // 2:])
    return ([w for i, w in enumerate(words) if i not in held],
            [w for i, w in enumerate(words) if i in held])


def write(path, header, words):
    with open(path, "w", encoding="utf-8") as f:
        for h in header:
            f.write(f"# {h}\n")
        for w in words:
            f.write(w + "\n")
    print(f"wrote {path}: {len(words)} words", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rgb", default="/usr/share/X11/rgb.txt")
    ap.add_argument("--afinn", help="AFINN-en-165.txt (default: from PyPI afinn's sdist)")
    ap.add_argument("--profanity", help="profanity_wordlist.txt (default: from PyPI better-profanity's wheel)")
    ap.add_argument("--out", default=os.path.join(ROOT, "wordlists"))
    ap.add_argument("--lists", default="colors,sentiment,toxic", help="which lists to write")
    a = ap.parse_args()
    lists = set(a.lists.split(","))
    if lists - {"colors", "sentiment", "toxic"}:
        sys.exit(f"make_wordlists: unknown list(s) {sorted(lists - {'colors', 'sentiment', 'toxic'})}")
    os.makedirs(a.out, exist_ok=True)
    if "colors" in lists:
        write(os.path.join(a.out, "colors.txt"),
              ["Colour names: the single-word lower-case names of X11 rgb.txt (x11-common).",
               "Made by scripts/make_wordlists.py."], colors(a.rgb))
    if "sentiment" in lists:
        write(os.path.join(a.out, "sentiment.txt"),
              ["Sentiment words: the single words of AFINN-165 (Finn Arup Nielsen, PyPI afinn 0.1),",
               "scores dropped. AFINN is under the Open Database License (ODbL) 1.0; so is this list.",
               "Made by scripts/make_wordlists.py."], sentiment(afinn_text(a.afinn)))
    if "toxic" in lists:
        dic, held = toxic_split(profanity_text(a.profanity))
        src = f"better-profanity {PROFANITY_VERSION} profanity_wordlist.txt (MIT), shuffled with seed {TOXIC_SEED}"
        write(os.path.join(a.out, "toxic.txt"),
              [f"Toxic words, SOMP dictionary half ({len(dic)} of {PROFANITY_COUNT}): {src}; the other half",
               "is wordlists/toxic_heldout.txt (the lexical metric). Made by scripts/make_wordlists.py."], dic)
        write(os.path.join(a.out, "toxic_heldout.txt"),
              [f"Toxic words, held-out half ({len(held)} of {PROFANITY_COUNT}): {src}; never used to rank",
               "heads, only counted in generations. Made by scripts/make_wordlists.py."], held)


if __name__ == "__main__":
    main()
