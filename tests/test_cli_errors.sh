#!/usr/bin/env bash
# test_cli_errors.sh: the command line's mistakes, checked by exit code (2) and message text:
# every bad option value names the option, the value and what is allowed; unknown options end
# with a "see --help" hint; and input files (--concept, --control, --data, --edit, ...) are
# read and validated before the model loads. The model path in those cases does not exist, so a
# message about the input file (not about the model) shows that the file was checked first.
# Needs no model and no GPU.
set -u
cd "$(dirname "$0")/.."
HP=${HP_BIN:-./headpursuit}
if [ ! -x "$HP" ]; then
    echo "skipped: $HP is not built (run make)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
NOMODEL=$tmp/no-such-model.gguf

# expect RC TEXT [TEXT...] -- ARGS...: headpursuit ARGS exits with RC and its stderr holds every TEXT.
expect() {
    local rc=$1; shift
    local want=()
    while [ "$1" != "--" ]; do want+=("$1"); shift; done
    shift
    local err got
    err=$(timeout 60 "$HP" "$@" 2>&1 >/dev/null)
    got=$?
    if [ "$got" != "$rc" ]; then
        echo "FAIL: headpursuit $*: exit $got, expected $rc; stderr: $err"
        fails=$((fails + 1))
        return
    fi
    for w in "${want[@]}"; do
        if ! grep -qF -- "$w" <<<"$err"; then
            echo "FAIL: headpursuit $*: stderr lacks '$w'; stderr: $err"
            fails=$((fails + 1))
            return
        fi
    done
    echo "ok    headpursuit $*"
}

printf '{"question": "Which country has Vienna as its capital?", "answers": ["Austria"], "kind": "country"}\n' >"$tmp/qa.jsonl"
printf 'Austria\nFrance\n' >"$tmp/words.txt"
: >"$tmp/empty.txt"
printf 'not json\n' >"$tmp/bad.jsonl"
printf '[[1, 2, 3]]\n' >"$tmp/ids.json"

# --- option values: the option, the value, what is allowed ---------------------------------
Q=(--data "$tmp/qa.jsonl" --concept "$tmp/words.txt")
expect 2 "-k '0'" "an integer >= 1" -- rank "$NOMODEL" -k 0 "${Q[@]}"
expect 2 "-k 'abc'" "an integer >= 1" -- rank "$NOMODEL" -k abc "${Q[@]}"
expect 2 "-k '5x'" -- rank "$NOMODEL" -k 5x "${Q[@]}"
expect 2 "--limit '-1'" "an integer >= 0" -- rank "$NOMODEL" --limit -1 "${Q[@]}"
expect 2 "--batch '0'" "an integer >= 1" -- rank "$NOMODEL" --batch 0 "${Q[@]}"
expect 2 "--positions 'foo'" "prompt, mean or last" -- rank "$NOMODEL" --positions foo "${Q[@]}"
expect 2 "--show 'x'" -- heads "$NOMODEL" --show x --data "$tmp/qa.jsonl"
expect 2 "-k '-2'" -- heads "$NOMODEL" -k -2 --data "$tmp/qa.jsonl"
expect 2 "--top '8,abc'" "increasing integers >= 1" -- eval "$NOMODEL" --data "$tmp/qa.jsonl" --top 8,abc
expect 2 "--top '16,8'" -- eval "$NOMODEL" --data "$tmp/qa.jsonl" --top 16,8
expect 2 "--random 'x'" "an integer >= 0" -- eval "$NOMODEL" --data "$tmp/qa.jsonl" --random x
expect 2 "--max-new '0'" -- eval "$NOMODEL" --data "$tmp/qa.jsonl" --max-new 0
expect 2 "--alpha 'minus one'" "a number" -- eval "$NOMODEL" --data "$tmp/qa.jsonl" --alpha "minus one"
expect 2 "--seed '-1'" -- eval "$NOMODEL" --data "$tmp/qa.jsonl" --seed -1
expect 2 "--task 'bogus'" "qa, classify or caption" -- eval "$NOMODEL" --task bogus
expect 2 "--alpha 'a,b'" -- eval "$NOMODEL" --task classify --images "$tmp" --edit x --alpha a,b
expect 2 "--max-new 'abc'" "an integer >= 1" -- generate "$NOMODEL" --prompt hi --max-new abc
expect 2 "--max-new '-3'" "an integer >= 1" -- generate "$NOMODEL" --prompt hi --max-new -3
expect 2 "--top '0'" -- generate "$NOMODEL" --prompt hi --top 0
expect 2 "--by 'best'" "somp or ll" -- generate "$NOMODEL" --prompt hi --by best
expect 2 "--positions 'first'" "mean or last" -- capture "$NOMODEL" --text hi --out "$tmp/c.npy" --positions first
expect 2 "-k 'many'" -- somp --signals a.npy --dict b.npy -k many --out c.json
expect 2 "--image-size '3x4'" "HEIGHT,WIDTH" -- llava-features "$NOMODEL" --pixels "$tmp/ids.json" --image-size 3x4 --out x.npy

# --- missing pieces: what is missing, in the documented option names ------------------------
expect 2 "--prompt" -- generate "$NOMODEL"
expect 2 "missing MODEL" -- generate --prompt hi
expect 2 "unexpected argument 'extra'" -- generate "$NOMODEL" extra --prompt hi
expect 2 "need --concept" -- rank "$NOMODEL" --data "$tmp/qa.jsonl"
expect 2 "exactly one of --data" -- rank "$NOMODEL" --concept "$tmp/words.txt"
expect 2 "need --out" -- logits "$NOMODEL" --text hi

# --- unknown options: getopt's line plus the hint --------------------------------------------
for cmd in info tokenize logits capture generate rank heads eval llava-features llava-logits; do
    expect 2 "unrecognized option '--bogus'" "see 'headpursuit $cmd --help'" -- $cmd "$NOMODEL" --bogus
done

# --- input files checked before the model loads (the model path does not exist) -------------
expect 2 "--concept '$tmp/missing.txt'" "No such file" -- rank "$NOMODEL" --data "$tmp/qa.jsonl" --concept "$tmp/missing.txt"
expect 2 "--concept: $tmp/empty.txt: no words" -- rank "$NOMODEL" --data "$tmp/qa.jsonl" --concept "$tmp/empty.txt"
expect 2 "--control '$tmp': is a directory" -- rank "$NOMODEL" "${Q[@]}" --control "$tmp"
expect 2 "--data: $tmp/bad.jsonl" -- rank "$NOMODEL" --data "$tmp/bad.jsonl" --concept "$tmp/words.txt"
expect 2 "--vocab '$tmp/missing.txt'" -- heads "$NOMODEL" --data "$tmp/qa.jsonl" --vocab "$tmp/missing.txt"
expect 2 "--data '$tmp/missing.jsonl'" -- heads "$NOMODEL" --data "$tmp/missing.jsonl"
expect 2 "--edit '$tmp/missing.json'" -- eval "$NOMODEL" --data "$tmp/qa.jsonl" --edit "$tmp/missing.json"
expect 2 "--countries: $tmp/empty.txt: no words" -- eval "$NOMODEL" --data "$tmp/qa.jsonl" --countries "$tmp/empty.txt"
expect 2 "--ids-file '$tmp/missing.json'" -- capture "$NOMODEL" --ids-file "$tmp/missing.json" --out "$tmp/c.npy"
expect 2 "--edit '$tmp/missing.json'" -- generate "$NOMODEL" --prompt hi --edit "$tmp/missing.json"
expect 2 "--image '$tmp/missing.png'" -- llava-features "$NOMODEL" --image "$tmp/missing.png" --out x.npy
# With good inputs the first complaint is the model's: the checks above did not stop it early.
expect 1 "$NOMODEL" -- rank "$NOMODEL" "${Q[@]}" --quiet

if [ "$fails" -gt 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all command-line error checks passed"
