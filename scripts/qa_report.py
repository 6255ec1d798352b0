#!/usr/bin/env python3
"""qa_report.py OUT [OUT ...]: Markdown tables of a country-QA run made by scripts/country_qa.sh
or by `headpursuit run` (then only the by-kind table: the run's report.md has the rest)
(OUT/ranking.json, OUT/heads_top8.json, OUT/eval/eval.json): the unedited scores, the top SOMP
heads (EVR, Logit-Lens score, first SOMP tokens on the concept dictionary and over the whole
vocabulary: PAPER.md's Table 1 form) and the normalised F1 / answer match of the SOMP,
Logit-Lens and random (median [IQR]) edits at each k, and the right answers by kind of question
for every configuration whose answers are kept (OUT/eval/runs/; OUT may also be an eval
directory). Standard library only."""
import glob
import json
import os
import re
import string
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def tok(t):
    s = t.get("text", "")
    return repr(s)[1:-1].replace("|", "\\|") if s.strip() else repr(s)


def report(out, n_heads=8, n_tokens=8):
    rk = load(os.path.join(out, "ranking.json"))
    if rk is None:
        return f"### {out}\n\n(no ranking.json yet)\n"
    lines = [f"### {out}", ""]
    opts = [k for k in ("center", "normalize_atoms", "fold_norm") if rk.get(k)]
    lines.append(f"Model `{rk['model']}`, {rk['layers']} layers x {rk['heads_per_layer']} heads, "
                 f"{rk['samples']} train prompts, {len(rk['dictionary'])} concept atoms, SOMP k = {rk['k']}, "
                 f"positions {rk['positions']}, options: {', '.join(opts) or 'paper-literal (none)'}.")
    lines.append("")
    heads = {(h["layer"], h["head"]): h for h in rk["heads"]}
    full = {(h["layer"], h["head"]): h for h in (load(os.path.join(out, "heads_top8.json")) or [])}
    lines += ["| head | EVR | Logit Lens | first SOMP tokens (concept dictionary) | first SOMP tokens (whole vocabulary, EVR) |",
              "|---|---|---|---|---|"]
    for l, h in rk["somp_order"][:n_heads]:
        e = heads[(l, h)]
        sup = " ".join(tok(t) for t in e.get("support", [])[:n_tokens])
        f = full.get((l, h))
        fv = (" ".join(tok(t) for t in f["tokens"][:n_tokens]) + f" ({f['evr']:.2f})") if f else "—"
        lines.append(f"| L{l}.H{h} | {e['somp_evr']:.3f} | {e['logit_lens']:.3f} | {sup} | {fv} |")
    layers = [l for l, _ in rk["somp_order"][:32]]
    lines += ["", f"Layers of the top 32 SOMP heads: {sorted(layers)}", ""]
    ev = load(os.path.join(out, "eval", "eval.json"))
    if ev is None:
        lines.append("(no eval/eval.json yet)")
        return "\n".join(lines) + "\n"
    u = ev["unedited"]
    lines.append(f"Unedited ({ev['questions']} test questions: {u['n_country']} country, {u['n_other']} other): "
                 f"F1 {u['f1_country']:.3f} / {u['f1_other']:.3f}, answer match {u['match_country']:.3f} / "
                 f"{u['match_other']:.3f} (country / other). Edits: alpha = {ev['alpha']:g}, "
                 f"{ev['random_draws']} random draws.")
    lines.append("")
    for metric, name in (("f1", "F1"), ("match", "answer match")):
        lines += [f"Normalised {name} (edited / unedited):", "",
                  "| k | SOMP country | SOMP other | LL country | LL other | random country med [IQR] | random other med [IQR] |",
                  "|---|---|---|---|---|---|---|"]
        rows = {}
        for s in ev["summary"]:
            if s["metric"] == metric:
                rows.setdefault(s["k"], {})[s["questions"]] = s
        for k in sorted(rows):
            c, o = rows[k]["country"], rows[k]["other"]
            r = lambda x: f"{x['random_median']:.2f} [{x['random_q25']:.2f}, {x['random_q75']:.2f}]"
            lines.append(f"| {k} | {c['somp']:.2f} | {o['somp']:.2f} | {c['logit_lens']:.2f} | {o['logit_lens']:.2f} "
                         f"| {r(c)} | {r(o)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def norm(s):
    """SQuAD's normalize_answer: lower case, no punctuation, no articles, single spaces."""
    s = "".join(c for c in s.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def eval_dirs(out):
    """(eval dir, checkpoint dir) pairs: OUT/eval (country_qa.sh), OUT itself (an eval dir), or
    OUT/tasks/TASK/alphaA with the shared OUT/tasks/TASK/runs (`headpursuit run`)."""
    found = []
    for d in [os.path.join(out, "eval"), out] + sorted(glob.glob(os.path.join(out, "tasks", "*", "alpha*"))):
        if os.path.exists(os.path.join(d, "eval.json")):
            runs = os.path.join(d, "runs")
            found.append((d, runs if os.path.isdir(runs) else os.path.join(os.path.dirname(d), "runs")))
    return found


def by_kind(out):
    """Answer matches per kind of question (country / capital of a country / the quiz file of the
    other questions) for every configuration whose answers eval kept in its runs/ folder."""
    return "\n".join(by_kind_dir(d, runs) for d, runs in eval_dirs(out))


def by_kind_dir(d, runs_dir):
    ev = load(os.path.join(d, "eval.json"))
    alpha = ev.get("alpha", -1) if ev else -1
    runs = sorted(p for p in glob.glob(os.path.join(runs_dir, "*.json"))
                  if ".a" not in os.path.basename(p)[:-5] or f".a{alpha:g}" in os.path.basename(p))
    if ev is None or not runs:
        return ""
    items = []
    with open(ev["data"]) as f:
        for line in f:
            if line.strip():
                items.append(json.loads(line))
    items = items[: ev["questions"]]
    kind = lambda q: "country" if q["kind"] == "country" else (
        "capital" if q.get("source") in ("africa", "america", "asia", "europe", "asia+europe") else q.get("source", "other"))
    kinds = sorted({kind(q) for q in items}, key=lambda k: (k != "country", k != "capital", k))
    lines = [f"Right answers by kind of question in {d} (a normalised accepted answer occurs in the reply):", "",
             "| configuration | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for path in runs:
        r = load(path)
        r = r.get("payload", r)  # the sweep's checkpoint form, or the older flat one
        ans = r.get("answers")
        if not ans or len(ans) != len(items):
            continue
        hit = {k: [0, 0] for k in kinds}
        for a, q in zip(ans, items):
            h = hit[kind(q)]
            h[1] += 1
            h[0] += any(norm(g) and norm(g) in norm(a) for g in q["answers"])
        lines.append(f"| {r['label']} | " + " | ".join(f"{hit[k][0]}/{hit[k][1]}" for k in kinds) + " |")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) > 1 else 2
    for out in sys.argv[1:]:
        if os.path.exists(os.path.join(out, "ranking.json")):
            print(report(out))
        print(by_kind(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
