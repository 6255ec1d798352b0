#!/usr/bin/env python3
"""build_qa.py: builds the country-answer question-answering set from Debian's bsdgames quiz
files (package bsdgames, /usr/share/games/bsdgames/quiz), read at run time.

Output (default --out-dir results/data/qa):
  train.jsonl, test.jsonl  one question a line:
      {"id", "question", "answers": [...], "kind": "country"|"other", "source", "fact"}
  control.txt              element names and US state capitals: a control concept
  countries.txt            every spelling variant of every country name, one a line (the
                           country word list for the SOMP dictionary; '#' lines are comments)

Questions
  kind "country" (the answer is a country), from africa/america/asia/europe (country:capital):
      "Which country has Vienna as its capital?" -> ["Austria"]
    Skipped when the capital's name already contains the country's name (Luxembourg,
    Kuwait City, Andorra la Vella, ...): those test copying, not knowledge.
  kind "other" (the answer is not a country):
      "What is the capital of Austria?"                      (same files; answer is a city)
      "What is the capital of the US state of Ohio?"          (state: state:capital)
      "Who was the 16th president of the United States?"      (pres: line order = number)
      "Who was vice president under Abraham Lincoln?"         (pres: president:vice)
      "Which chemical element has the symbol Fe?"             (elements: symbol:element)
    Skipped when an answer is also a country's name ("What is the capital of Monaco?"), so
    that labelling by answer (hp_qa_mark_kind with countries.txt) gives exactly these kinds.

Quiz pattern syntax (quiz(6)): categories separated by ':', `a|b` alternatives, `{x}` optional,
`[a|b]` grouping, `\\` quotes the next character or, at the end of a line, continues it.
Accented letters are written as overstrikes (e, backspace, '), which we compose into the
Unicode letter (é); the plain-letter alternative the file also gives is kept. Every expansion
of a pattern is an accepted answer (empty and one-character expansions dropped). The name used
inside a question is one readable expansion: first alternative (skipping all-capital
abbreviations like UK when a spelled-out one exists), optional parts included with their
longest alternative ("Democratic Republic of the Congo", "Abraham Lincoln").

A country listed in two files (Russia in asia and europe) is one fact: its spellings and
capitals are merged and its source is "asia+europe".

Split: by fact, not by question. Facts are grouped in strata (country, state, pres, elements);
each stratum's sorted fact keys are shuffled with random.Random(f"{seed}:{stratum}") and the
first round(train_frac * n) go to train. Both questions about one country ("Which country has
Vienna ..." and "What is the capital of Austria?") therefore land in the same split, so no
country fact is seen in both. Each split is then shuffled (seeded) for output. The same seed
and quiz files always give byte-identical outputs.
"""
import argparse
import json
import os
import random
import re
import sys
import tempfile
import unicodedata

DEFAULT_QUIZ_DIR = "/usr/share/games/bsdgames/quiz"
COUNTRY_FILES = ("africa", "america", "asia", "europe")


class QuizError(Exception):
    pass


# ---- quiz pattern parsing -------------------------------------------------------------------
# AST: a pattern is ("alt", optional, [seq, ...]); a seq is a list of items, an item is a
# one-character str or a nested ("alt", ...) node.

def parse_pattern(text, where):
    pos = 0

    def parse_alt(close, optional):
        nonlocal pos
        seqs, seq = [], []
        while pos < len(text):
            c = text[pos]
            if c == "\\":
                if pos + 1 >= len(text):
                    raise QuizError(f"{where}: dangling backslash")
                seq.append(text[pos + 1])
                pos += 2
            elif c == "|":
                seqs.append(seq)
                seq = []
                pos += 1
            elif c in "{[":
                pos += 1
                seq.append(parse_alt("}" if c == "{" else "]", c == "{"))
            elif c in "}]":
                if c != close:
                    raise QuizError(f"{where}: unexpected '{c}' at column {pos + 1}")
                pos += 1
                seqs.append(seq)
                return ("alt", optional, seqs)
            else:
                seq.append(c)
                pos += 1
        if close is not None:
            raise QuizError(f"{where}: missing '{close}'")
        seqs.append(seq)
        return ("alt", optional, seqs)

    return parse_alt(None, False)


def _dedupe(items):
    seen, out = set(), []
    for s in items:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def expand(node):
    """All strings the pattern accepts, in file order (the optional-present form first)."""
    _, optional, seqs = node
    out = []
    for seq in seqs:
        partial = [""]
        for item in seq:
            if isinstance(item, str):
                partial = [p + item for p in partial]
            else:
                sub = expand(item)
                partial = [p + s for p in partial for s in sub]
        out.extend(partial)
    if optional:
        out.append("")
    return _dedupe(out)


def _is_abbreviation(seq):
    s = "".join(x for x in seq if isinstance(x, str))
    return len(seq) == len(s) and len(s) >= 2 and s.isalpha() and s.isupper()


def display(node, top=True):
    """One readable expansion for use inside a question (see the module comment)."""
    _, optional, seqs = node

    def seq_display(seq):
        return "".join(x if isinstance(x, str) else display(x, False) for x in seq)

    if optional:
        return max((seq_display(s) for s in seqs), key=len)  # max keeps the first of ties
    if top:
        spelled = [s for s in seqs if not _is_abbreviation(s)]
        if spelled:
            return seq_display(spelled[0])
    return seq_display(seqs[0])


# Overstruck accents: the quiz files write é as "e\b'" or "'\be".
_COMBINING = {"'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", ",": "\u0327",
              "\u00b0": "\u030a", '"': "\u0308"}
_STROKE = {"o": "\u00f8", "O": "\u00d8"}


def _compose(a, b, where):
    for mark, letter in ((a, b), (b, a)):
        if mark == "/" and letter in _STROKE:
            return _STROKE[letter]
        if mark in _COMBINING and letter.isalpha():
            c = unicodedata.normalize("NFC", letter + _COMBINING[mark])
            if len(c) == 1:
                return c
    raise QuizError(f"{where}: cannot compose overstrike {a!r} + {b!r}")


def clean(s, where):
    s = re.sub(r"(.)\x08(.)", lambda m: _compose(m.group(1), m.group(2), where), s)
    if "\x08" in s:
        raise QuizError(f"{where}: stray backspace in {s!r}")
    s = " ".join(s.split())
    return s.replace(" ,", ",")  # "Biden{{,} Jr}" with the name left out: "Joe , Jr"


class Field:
    """One category of one quiz line: its accepted answers and its display form."""

    def __init__(self, text, where):
        node = parse_pattern(text, where)
        self.variants = _dedupe(v for v in (clean(x, where) for x in expand(node)) if v)
        self.display = clean(display(node), where)
        self.where = where

    def answers(self):
        # One-character expansions ("J" from "{J{oe}} {Biden}") are too weak to accept.
        return [v for v in self.variants if len(v) >= 2]


def read_quiz_lines(path):
    """Yields (line_number, categories) with continuation lines joined."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as ex:
        raise QuizError(f"{path}: not UTF-8 ({ex})")
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i]
        i += 1
        while _ends_with_continuation(line):
            if i >= len(lines):
                raise QuizError(f"{path}:{start}: continuation at end of file")
            line = line[:-1] + lines[i]
            i += 1
        if not line.strip():
            continue
        yield start, split_categories(line)


def _ends_with_continuation(line):
    n = len(line) - len(line.rstrip("\\"))
    return n % 2 == 1  # an odd run of trailing backslashes: the last one is not quoted


def split_categories(line):
    parts, cur, depth, i = [], [], 0, 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            cur.append(line[i:i + 2])  # keep the quote; parse_pattern resolves it
            i += 2
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        if c == ":" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


# ---- the index: which file holds what, and which column is which ------------------------------

def read_index(quiz_dir):
    """Maps a data file's basename to (path, [category patterns], "index:line")."""
    index_path = os.path.join(quiz_dir, "index")
    if not os.path.exists(index_path):
        raise QuizError(f"{index_path}: no quiz index (is bsdgames installed?)")
    out = {}
    for lineno, cats in read_quiz_lines(index_path):
        where = f"{index_path}:{lineno}"
        name = os.path.basename(cats[0])
        # Relocatable: look for the data file beside the index, not at the index's absolute path.
        path = os.path.join(quiz_dir, name)
        out[name] = (path, cats[1:], where)
    return out


def column(index, name, category):
    if name not in index:
        raise QuizError(f"quiz index: no subject '{name}'")
    path, cats, where = index[name]
    # Parsed only for the subjects we use, so an odd line elsewhere in the index cannot stop us.
    cols = [[v.lower() for v in Field(c, where).variants] for c in cats]
    for i, variants in enumerate(cols):
        if category in variants:
            return path, i
    raise QuizError(f"quiz index: subject '{name}' has no category '{category}' ({cols})")


def load_columns(index, name, categories):
    """Rows of the named columns of a quiz file, as Field objects."""
    path = None
    idx = []
    for cat in categories:
        path, i = column(index, name, cat)
        idx.append(i)
    rows = []
    for lineno, cats in read_quiz_lines(path):
        where = f"{path}:{lineno}"
        if len(cats) <= max(idx):
            raise QuizError(f"{where}: {len(cats)} categories, expected at least {max(idx) + 1}")
        rows.append((lineno, [Field(cats[i], where) for i in idx]))
    return rows


# ---- question building ----------------------------------------------------------------------

def norm(s):
    """SQuAD-style normalisation (the one host/eval/metrics.c implements), for overlap checks."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def slug(s):
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")


def ordinal(n):
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def build_facts(index):
    """Returns {stratum: {fact_key: [question dicts]}}, the country word list, and the
    questions left out (country questions whose capital names the country; other questions
    whose answer is a country's name)."""
    strata = {"country": {}, "state": {}, "pres": {}, "elements": {}}

    # Countries, merged across files by display name.
    countries = {}
    order = []
    for name in COUNTRY_FILES:
        path, ci = column(index, name, "capital")
        if ci != 1:
            raise QuizError(f"{path}: expected country:capital columns")
        for lineno, (country, capital) in load_columns(index, name, [name, "capital"]):
            key = slug(country.display)
            if key not in countries:
                countries[key] = {"country": country, "names": [], "caps": [],
                                  "cap_display": capital.display, "sources": []}
                order.append(key)
            c = countries[key]
            c["names"] = _dedupe(c["names"] + country.answers())
            c["caps"] = _dedupe(c["caps"] + capital.answers())
            if name not in c["sources"]:
                c["sources"].append(name)
    skipped, skipped_other = [], []
    # Two countries with one capital would make "Which country has X ..." ambiguous: accept
    # every owner. (Basse-Terre and Basseterre are different cities, so this compares the
    # spelling, not the SQuAD-normalised form.)
    owners = {}
    for key in order:
        owners.setdefault(countries[key]["cap_display"].casefold(), []).append(key)
    for key in order:
        c = countries[key]
        source = "+".join(c["sources"])
        fact = f"country:{key}"
        qs = []
        ncap = f" {norm(c['cap_display'])} "
        if any(f" {norm(n)} " in ncap for n in c["names"]):
            skipped.append(c["country"].display)
        else:
            qs.append({"id": f"{source}/{key}/country", "kind": "country", "source": source,
                       "fact": fact,
                       "answers": _dedupe(n for k in owners[c["cap_display"].casefold()]
                                          for n in countries[k]["names"]),
                       "question": f"Which country has {c['cap_display']} as its capital?"})
        qs.append({"id": f"{source}/{key}/capital", "kind": "other", "source": source,
                   "fact": fact, "answers": c["caps"],
                   "question": f"What is the capital of {c['country'].display}?"})
        strata["country"][fact] = qs

    for lineno, (state, capital) in load_columns(index, "state", ["state", "capital"]):
        key = slug(state.display)
        fact = f"state:{key}"
        strata["state"][fact] = [{
            "id": f"state/{key}/capital", "kind": "other", "source": "state", "fact": fact,
            "answers": capital.answers(),
            "question": f"What is the capital of the US state of {state.display}?"}]

    for number, (lineno, (pres, vice)) in enumerate(
            load_columns(index, "pres", ["president", "vice"]), start=1):
        key = f"{number:02d}-{slug(pres.display)}"
        fact = f"pres:{key}"
        qs = [{"id": f"pres/{key}/number", "kind": "other", "source": "pres", "fact": fact,
               "answers": pres.answers(),
               "question": f"Who was the {ordinal(number)} president of the United States?"}]
        if vice.answers() and not vice.display.lower().startswith("none"):
            qs.append({"id": f"pres/{key}/vice", "kind": "other", "source": "pres",
                       "fact": fact, "answers": vice.answers(),
                       "question": f"Who was vice president under {pres.display}?"})
        strata["pres"][fact] = qs

    for lineno, (symbol, element) in load_columns(index, "elements", ["symbol", "element"]):
        key = slug(symbol.display)
        fact = f"element:{key}"
        strata["elements"][fact] = [{
            "id": f"elements/{key}/name", "kind": "other", "source": "elements", "fact": fact,
            "answers": element.answers(),
            "question": f"Which chemical element has the symbol {symbol.display}?"}]

    words = sorted({n for c in countries.values() for n in c["names"]},
                   key=lambda s: (s.casefold(), s))
    # "What is the capital of Monaco?" answers a country's name: neither clearly "country" nor
    # "other", and it would let hp_qa_mark_kind (which labels by answer) disagree with us.
    country_norm = {norm(w) for w in words}
    for stratum in strata.values():
        for fact, qs in stratum.items():
            keep = []
            for q in qs:
                if q["kind"] == "other" and any(norm(a) in country_norm for a in q["answers"]):
                    skipped_other.append(q["question"])
                else:
                    keep.append(q)
            qs[:] = keep
        for fact in [f for f, qs in stratum.items() if not qs]:
            del stratum[fact]
    for stratum in strata.values():
        for qs in stratum.values():
            for q in qs:
                if not q["answers"]:
                    raise QuizError(f"{q['id']}: no answers")
    return strata, words, skipped, skipped_other


def split(strata, seed, train_frac):
    train, test = [], []
    for name in sorted(strata):
        keys = sorted(strata[name])
        random.Random(f"{seed}:{name}").shuffle(keys)
        n_train = int(round(train_frac * len(keys)))
        for i, key in enumerate(keys):
            (train if i < n_train else test).extend(strata[name][key])
    for part, tag in ((train, "train"), (test, "test")):
        part.sort(key=lambda q: q["id"])
        random.Random(f"{seed}:{tag}").shuffle(part)
    return train, test


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def to_jsonl(items):
    keys = ("id", "question", "answers", "kind", "source", "fact")
    return "".join(json.dumps({k: q[k] for k in keys}, ensure_ascii=False) + "\n" for q in items)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiz-dir", default=DEFAULT_QUIZ_DIR,
                    help="bsdgames quiz directory holding 'index' (default %(default)s)")
    ap.add_argument("--out-dir", default="results/data/qa", help="default %(default)s")
    ap.add_argument("--seed", type=int, default=0, help="shuffle seed (default %(default)s)")
    ap.add_argument("--train-frac", type=float, default=0.6,
                    help="fraction of facts per stratum in train (default %(default)s)")
    args = ap.parse_args(argv)
    if not 0.0 < args.train_frac < 1.0:
        ap.error("--train-frac must be in (0, 1)")
    try:
        index = read_index(args.quiz_dir)
        strata, words, skipped, skipped_other = build_facts(index)
    except (QuizError, OSError) as ex:
        print(f"build_qa: {ex}", file=sys.stderr)
        return 1
    train, test = split(strata, args.seed, args.train_frac)
    os.makedirs(args.out_dir, exist_ok=True)
    write_atomic(os.path.join(args.out_dir, "train.jsonl"), to_jsonl(train))
    write_atomic(os.path.join(args.out_dir, "test.jsonl"), to_jsonl(test))
    header = (f"# Country names and spelling variants from {args.quiz_dir}/"
              f"{{{','.join(COUNTRY_FILES)}}}, written by scripts/build_qa.py.\n")
    write_atomic(os.path.join(args.out_dir, "countries.txt"), header + "".join(w + "\n" for w in words))
    # A control concept for `rank --control`: the answers of the element and state-capital
    # questions (no country names), to tell concept-specific heads from heads that any word
    # list of the same kind explains.
    control = sorted({q["answers"][0] for q in train + test
                      if q["kind"] == "other" and q["source"].split("+")[0] in ("elements", "state")})
    write_atomic(os.path.join(args.out_dir, "control.txt"),
                 "# Element names and US state capitals (a control concept), written by "
                 "scripts/build_qa.py.\n" + "".join(w + "\n" for w in control))

    def count(items, kind):
        return sum(q["kind"] == kind for q in items)

    print(f"build_qa: {args.out_dir} (seed {args.seed}, train fraction {args.train_frac})")
    for tag, items in (("train", train), ("test", test)):
        by_src = {}
        for q in items:
            if q["kind"] == "other":
                src = q["source"].split("+")[0]
                src = "capitals" if src in COUNTRY_FILES else src
                by_src[src] = by_src.get(src, 0) + 1
        print(f"  {tag:5s} {len(items):4d} questions: {count(items, 'country'):4d} country, "
              f"{count(items, 'other'):4d} other ("
              + ", ".join(f"{k} {v}" for k, v in sorted(by_src.items())) + ")")
    print("  facts: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(strata.items())))
    print(f"  country questions skipped (capital names the country): {len(skipped)}: "
          + ", ".join(skipped))
    print(f"  other questions skipped (answer is a country's name): {len(skipped_other)}: "
          + "; ".join(skipped_other))
    print(f"  countries.txt: {len(words)} names, control.txt: {len(control)} words")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
