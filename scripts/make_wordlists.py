#!/usr/bin/env python3
"""make_wordlists.py: builds the concept word lists of the captioning experiment (PAPER.md §6).

  wordlists/colors.txt     the single-word, lower-case colour names of X11's rgb.txt
                           (/usr/share/X11/rgb.txt, Debian x11-common): "red", "navy", "khaki", ...
                           (multi-word and CamelCase spellings and numbered shades are dropped)
  wordlists/sentiment.txt  the single words of AFINN-165 (Finn Årup Nielsen's sentiment lexicon,
                           PyPI `afinn` 0.1, afinn/data/AFINN-en-165.txt), without their scores

wordlists/quantity.txt and the per-dataset class-name lists are written by hand, not here.
Usage: python3 scripts/make_wordlists.py [--rgb FILE] [--afinn FILE] [--out DIR]
Without --afinn the afinn source package is fetched with `pip download --no-deps` into a
temporary folder (the lexicon ships only in its sdist). Standard library only.
"""
import argparse
import glob
import os
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
AFINN_VERSION = "0.1"
AFINN_MEMBER = "afinn/data/AFINN-en-165.txt"


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
    ap.add_argument("--out", default=os.path.join(ROOT, "wordlists"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    write(os.path.join(a.out, "colors.txt"),
          ["Colour names: the single-word lower-case names of X11 rgb.txt (x11-common).",
           "Made by scripts/make_wordlists.py."], colors(a.rgb))
    write(os.path.join(a.out, "sentiment.txt"),
          ["Sentiment words: the single words of AFINN-165 (Finn Arup Nielsen, PyPI afinn 0.1),",
           "scores dropped. AFINN is under the Open Database License (ODbL) 1.0; so is this list.",
           "Made by scripts/make_wordlists.py."], sentiment(afinn_text(a.afinn)))


if __name__ == "__main__":
    main()
