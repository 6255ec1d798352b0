#!/usr/bin/env python3
"""`eval --task toxicity` end to end on the real SmolLM2-135M GGUF (CI fetches it; skipped
without it), on the RealToxicityPrompts and TET fixtures (standard library only; exit 0 pass,
1 fail, 77 skip):

  - every reported number (toxic rate, mean probability, held-out words per 1000, perplexity,
    and each of them normalised to the unedited model; the summary's SOMP / LL / random median
    and IQR) is recomputed here from the raw totals in eval.json;
  - the raw totals are recomputed from generations.jsonl: the classifier by
    `headpursuit toxicity` on the generations, held-out hits and word counts by an independent
    Python matcher;
  - the edited heads are the ranking's top k;
  - a second run resumes from the checkpoints and gives the same results;
  - TET (raw prompts) without --edit writes baseline.json.
Small: 4 prompts, 6 new tokens, k = 2, 2 random draws (~15 s on 2 cores).
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("HP_BIN", os.path.join(ROOT, "headpursuit"))
GGUF = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
FIX = os.path.join(ROOT, "tests", "fixtures", "toxicity")
HELD = os.path.join(ROOT, "wordlists", "toxic_heldout.txt")
fails = 0


def check(cond, msg):
    global fails
    print(("ok    " if cond else "FAIL  ") + msg)
    if not cond:
        fails += 1


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"FAIL  {' '.join(args)} exited {p.returncode}: {p.stderr[-600:]}")
    return p


def close(a, b, tol=1e-9):
    if a is None or b is None:  # NaN is written as null
        return a is None and (b is None or b != b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def ratio(x, base):
    return x / base if base > 0 else None


def scores(raw):
    n = raw["prompts"]
    return {"toxic_rate": raw["toxic"] / n, "mean_prob": raw["prob_sum"] / n,
            "lexical_per_1k_words": 1000.0 * raw["heldout_hits"] / raw["words"] if raw["words"] else 0.0,
            "perplexity": math.exp(raw["nll_sum"] / raw["nll_tokens"]) if raw["nll_tokens"] else None}


def word_byte(ch):
    return ord(ch) >= 0x80 or ch.isascii() and ch.isalnum()


def lexicon(words, text):
    """Whole-word, ASCII-case-insensitive occurrences; words = runs of ASCII alnum / non-ASCII."""
    b = text.encode("utf-8")
    t = "".join(chr(c) for c in b)  # byte-wise, like the C code
    low = re.sub(r"[A-Z]", lambda m: m.group(0).lower(), t)
    n_words = sum(1 for i, c in enumerate(t) if word_byte(c) and (i == 0 or not word_byte(t[i - 1])))
    hits = 0
    for w in words:
        wb = "".join(chr(c) for c in w.encode("utf-8"))
        wl = re.sub(r"[A-Z]", lambda m: m.group(0).lower(), wb)
        for i in range(len(low) - len(wl) + 1):
            if low[i:i + len(wl)] != wl:
                continue
            if i > 0 and word_byte(t[i - 1]) and word_byte(wl[0]):
                continue
            j = i + len(wl)
            if j < len(t) and word_byte(t[j]) and word_byte(wl[-1]):
                continue
            hits += 1
    return hits, n_words


def median_iqr(xs):
    """numpy's default (linear) percentiles."""
    s = sorted(xs)

    def pct(q):
        pos = (len(s) - 1) * q
        lo = math.floor(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)
    return pct(0.5), pct(0.25), pct(0.75)


def main():
    if not os.access(BIN, os.X_OK):
        print(f"skipped: {BIN} is not built (run make)")
        return 77
    if not os.path.exists(GGUF):
        print(f"skipped: {GGUF} not found (scripts/fetch_model.sh smollm2)")
        return 77
    held = [l.strip() for l in open(HELD, encoding="utf-8") if l.strip() and not l.startswith("#")]
    with tempfile.TemporaryDirectory() as tmp:
        rk = os.path.join(tmp, "rank.json")
        run("rank", GGUF, "--data", os.path.join(ROOT, "tests", "fixtures", "qa", "good.jsonl"), "--concept",
            os.path.join(ROOT, "wordlists", "toxic.txt"), "-k", "3", "--out", rk, "--device", "cpu")
        ev = os.path.join(tmp, "ev")
        args = ["eval", GGUF, "--task", "toxicity", "--data", os.path.join(FIX, "rtp_prompts.jsonl"), "--edit", rk,
                "--top", "2", "--random", "2", "--max-new", "6", "--limit", "4", "--out-dir", ev, "--device", "cpu"]
        run(*args)
        e = json.load(open(os.path.join(ev, "eval.json")))
        check(e["prompts"] == 4 and e["format"] == "realtoxicityprompts", f"{e['prompts']} RTP prompts")
        base = scores(e["unedited"]["raw"])
        for k, v in base.items():
            check(close(e["unedited"][k], v), f"unedited {k} {e['unedited'][k]} = {v} from raw totals")
        order = json.load(open(rk))["somp_order"]
        top = ",".join(f"{l}.{h}" for l, h in order[:2])
        somp = [r for r in e["results"] if r["method"] == "somp"]
        check(len(somp) == 1 and somp[0]["heads"] == top, f"SOMP k=2 edits the ranking's top 2 ({top})")
        bad = 0
        for r in e["results"]:
            s = scores(r["raw"])
            for k, v in s.items():
                bad += not close(r[k], v)
            for k, nk in [("toxic_rate", "norm_toxic_rate"), ("mean_prob", "norm_mean_prob"),
                          ("lexical_per_1k_words", "norm_lexical"), ("perplexity", "norm_perplexity")]:
                bad += not close(r[nk], ratio(s[k], base[k]) if s[k] is not None and base[k] is not None else None)
        check(bad == 0, f"every result row's scores and normalised scores recomputed from raw ({bad} differ)")
        names = {"toxic_rate": "toxic_rate", "mean_prob": "mean_prob", "lexical": "lexical_per_1k_words",
                 "perplexity": "perplexity"}
        bad = 0
        for row in e["summary"]:
            key = names[row["metric"]]
            b = base[key]
            by = {r["method"]: r for r in e["results"] if r["k"] == row["k"] and r["method"] != "random"}
            rnd = [scores(r["raw"])[key] / b for r in e["results"] if r["method"] == "random" and b]
            bad += not close(row["somp"], ratio(scores(by["somp"]["raw"])[key], b))
            bad += not close(row["logit_lens"], ratio(scores(by["logit_lens"]["raw"])[key], b))
            if rnd:
                med, q25, q75 = median_iqr(rnd)
                bad += not (close(row["random_median"], med) and close(row["random_q25"], q25) and
                            close(row["random_q75"], q75))
        check(bad == 0, f"summary (SOMP, LL, random median/IQR of {len(e['summary'])} rows) from raw ({bad} differ)")

        # Raw totals from the generations themselves.
        gens = [json.loads(l) for l in open(os.path.join(ev, "generations.jsonl"), encoding="utf-8")]
        confs = {}
        for g in gens:
            confs.setdefault(g["config"], []).append(g)
        check(set(confs) == {"unedited", "SOMP k=2", "LL k=2"} and all(len(v) == 4 for v in confs.values()),
              f"generations.jsonl: {sorted(confs)} x 4 prompts")
        label_raw = {"unedited": e["unedited"]["raw"]}
        for r in e["results"]:
            if r["method"] in ("somp", "logit_lens"):
                label_raw[("SOMP" if r["method"] == "somp" else "LL") + f" k={r['k']}"] = r["raw"]
        for label, rows in confs.items():
            gp = os.path.join(tmp, "g.jsonl")
            with open(gp, "w", encoding="utf-8") as f:
                for g in rows:
                    f.write(json.dumps({"text": g["generation"]}, ensure_ascii=False) + "\n")
            p = run("toxicity", "--file", gp)
            probs = [json.loads(l)["prob"] for l in p.stdout.splitlines()]
            raw = label_raw[label]
            hits = words = 0
            for g in rows:
                h, w = lexicon(held, g["generation"])
                hits, words = hits + h, words + w
            check(sum(x >= 0.5 for x in probs) == raw["toxic"] and close(sum(probs), raw["prob_sum"], 1e-12) and
                  hits == raw["heldout_hits"] and words == raw["words"] and
                  sum(not g["generation"] for g in rows) == raw["empty"],
                  f"{label}: toxic {raw['toxic']}, prob sum {raw['prob_sum']:.4f}, held-out hits "
                  f"{raw['heldout_hits']} / {raw['words']} words recomputed from its generations")
        for f in ("eval.csv", "toxic_rate_vs_k.svg", "mean_prob_vs_k.svg", "lexical_vs_k.svg",
                  "perplexity_vs_k.svg", "heads_heatmap.svg"):
            check(os.path.getsize(os.path.join(ev, f)) > 0, f"{f} written")

        p2 = run(*args)
        e2 = json.load(open(os.path.join(ev, "eval.json")))
        n_units = 1 + 2 + 2
        check(p2.stderr.count("resumed from") == n_units and e2["results"] == e["results"] and
              e2["unedited"] == e["unedited"],
              f"a re-run resumes all {n_units} configurations from the checkpoints, identical results")

        bdir = os.path.join(tmp, "tet")
        run("eval", GGUF, "--task", "toxicity", "--data", os.path.join(FIX, "tet.json"), "--max-new", "4",
            "--out-dir", bdir, "--device", "cpu", "--quiet")
        b = json.load(open(os.path.join(bdir, "baseline.json")))
        check(b["format"] == "tet" and b["prompts"] == 4 and b["prompt"] == "%s" and
              close(b["unedited"]["toxic_rate"], scores(b["unedited"]["raw"])["toxic_rate"]),
              "TET without --edit: baseline.json, raw prompts")
        bad = subprocess.run([BIN, "eval", GGUF, "--task", "toxicity", "--data", os.path.join(FIX, "tet.json"),
                              "--challenging", "--out-dir", bdir], capture_output=True, text=True)
        check(bad.returncode == 2 and "challenging" in bad.stderr, f"--challenging on TET refused: {bad.stderr.strip()}")
    print(f"{fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
