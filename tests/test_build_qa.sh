#!/usr/bin/env bash
# test_build_qa.sh: builds the bsdgames QA set into a temporary directory and checks the split:
# both splits non-empty, no question and no country fact in both, every question answerable,
# "Which country has Vienna as its capital?" -> Austria, the same seed giving identical files,
# and a deliberately broken quiz file failing with its file:line named. Exit 77 (skip) when
# bsdgames is not installed.
set -u
cd "$(dirname "$0")/.."
QUIZ=${HP_QUIZ_DIR:-/usr/share/games/bsdgames/quiz}
PY=${HP_PYTHON:-python3}
if [ ! -f "$QUIZ/index" ]; then
    echo "skipped: bsdgames not installed ($QUIZ/index missing)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$PY" scripts/build_qa.py --quiz-dir "$QUIZ" --out-dir "$tmp/a" || fail "build_qa.py failed"
"$PY" scripts/build_qa.py --quiz-dir "$QUIZ" --out-dir "$tmp/b" >/dev/null || fail "second run failed"
for f in train.jsonl test.jsonl countries.txt; do
    cmp -s "$tmp/a/$f" "$tmp/b/$f" || fail "$f differs between two runs with the same seed"
done
"$PY" scripts/build_qa.py --quiz-dir "$QUIZ" --out-dir "$tmp/c" --seed 1 >/dev/null || fail "seed 1 failed"
cmp -s "$tmp/a/test.jsonl" "$tmp/c/test.jsonl" && fail "seeds 0 and 1 gave the same test split"

"$PY" - "$tmp/a" <<'EOF' || fail "split checks"
import json, sys
d = sys.argv[1]
splits = {}
for name in ("train", "test"):
    with open(f"{d}/{name}.jsonl", encoding="utf-8") as f:
        splits[name] = [json.loads(line) for line in f if line.strip()]
tr, te = splits["train"], splits["test"]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
for name, items in splits.items():
    check(items, f"{name} is empty")
    for kind in ("country", "other"):
        check(any(q["kind"] == kind for q in items), f"{name} has no {kind} questions")
    for q in items:
        check(q["kind"] in ("country", "other"), f"{q['id']}: kind {q['kind']!r}")
        check(q["question"].strip(), f"{q['id']}: empty question")
        check(q["answers"] and all(isinstance(a, str) and a.strip() for a in q["answers"]),
              f"{q['id']}: empty answers")
ids = [q["id"] for q in tr + te]
check(len(ids) == len(set(ids)), "duplicate ids")
both = {q["question"] for q in tr} & {q["question"] for q in te}
check(not both, f"questions in both splits: {sorted(both)[:5]}")
facts = lambda items: {q["fact"] for q in items if q["fact"].startswith("country:")}
both = facts(tr) & facts(te)
check(not both, f"country facts in both splits: {sorted(both)[:5]}")
country_names = lambda items: {a for q in items if q["kind"] == "country" for a in q["answers"]}
both = country_names(tr) & country_names(te)
check(not both, f"country answers in both splits: {sorted(both)[:5]}")
vienna = [q for q in tr + te if q["question"] == "Which country has Vienna as its capital?"]
check(len(vienna) == 1 and "Austria" in vienna[0]["answers"], f"Vienna question: {vienna}")
check(all(q["kind"] == "other" for q in tr + te if q["question"].startswith("What is the capital")),
      "capital questions must be 'other'")
with open(f"{d}/countries.txt", encoding="utf-8") as f:
    words = [w.strip() for w in f if w.strip() and not w.startswith("#")]
check("Austria" in words and "Côte d'Ivoire" in words, "countries.txt lacks Austria / Côte d'Ivoire")
# The labels must agree with labelling by answer (hp_qa_mark_kind): an answer is a country's
# name exactly for country questions. Same normalisation as host/eval/metrics.c (SQuAD v1.1).
import re, string
def norm(s):
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())
cn = {norm(w) for w in words}
for q in tr + te:
    hit = any(norm(a) in cn for a in q["answers"])
    check(hit == (q["kind"] == "country"), f"{q['id']}: kind {q['kind']} but country-name answer {hit}")
n = len(tr) + len(te)
check(0.5 < len(tr) / n < 0.7, f"train fraction {len(tr) / n:.2f}")
for e in errors:
    print("FAIL:", e)
print(f"checked {len(tr)} train / {len(te)} test questions, {len(words)} country names")
sys.exit(1 if errors else 0)
EOF

# A broken quiz file must fail, naming the file and line (here line 2: an unclosed '{').
mkdir -p "$tmp/quiz"
cp "$QUIZ"/index "$QUIZ"/africa "$QUIZ"/america "$QUIZ"/asia "$QUIZ"/state "$QUIZ"/pres \
   "$QUIZ"/elements "$tmp/quiz/"
printf 'Austria:Vienna\nNarnia:Cair {Paravel\n' >"$tmp/quiz/europe"
if "$PY" scripts/build_qa.py --quiz-dir "$tmp/quiz" --out-dir "$tmp/d" 2>"$tmp/err"; then
    fail "a broken quiz file was accepted"
fi
grep -q "$tmp/quiz/europe:2: missing '}'" "$tmp/err" || fail "unexpected error: $(cat "$tmp/err")"
echo "broken quiz file rejected: $(cat "$tmp/err")"
echo "ok"
