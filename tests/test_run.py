#!/usr/bin/env python3
"""`headpursuit run EXPERIMENT.json` on a small SmolLM2 experiment (8 train, 6 test questions):
stage caching asserted from OUT/run_log.json (never from timing), alpha-only changes, --force,
a SIGKILL in the middle of the sweep resumed to byte-identical results, corrupt or truncated
cached outputs recomputed, bad experiment files refused naming the key and writing nothing.
Skipped when the SmolLM2 GGUF is absent (scripts/test.sh fetches it)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.abspath(os.environ.get("HP_BIN", os.path.join(ROOT, "headpursuit")))
GGUF = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}


class SkipTest(Exception):
    pass


def check(name, fn):
    try:
        msg = fn()
        counts["PASS"] += 1
        print(f"PASS  {name:46s} {msg or ''}")
    except SkipTest as s:
        counts["SKIP"] += 1
        print(f"SKIP  {name:46s} skipped: {s}")
    except Exception as ex:  # any exception is a failure
        counts["FAIL"] += 1
        print(f"FAIL  {name:46s} {type(ex).__name__}: {ex}")


def experiment(tmp, out, **task):
    t = {"kind": "qa", "concept": "country", "k": [2, 4], "alpha": [-1], "random": 4, "limit": 6, "max_new": 4,
         "batch": 6}
    t.update(task)
    return {"description": "test experiment", "model": GGUF, "device": "cpu", "output": out, "seed": 7,
            "data": {"train": os.path.join(tmp, "qa", "train.jsonl"), "test": os.path.join(tmp, "qa", "test.jsonl"),
                     "train_limit": 8},
            "somp": {"k": 5}, "concepts": [{"name": "country", "words": os.path.join(tmp, "qa", "countries.txt")}],
            "tasks": [t]}


def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f) if not isinstance(obj, str) else f.write(obj)
    return path


def run(xp, *args, ok=True):
    p = subprocess.run([BIN, "run", xp, "--quiet", *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise AssertionError(f"run {xp} exited {p.returncode}: {p.stderr.strip()[-500:]}")
    return p


def statuses(out):
    log = json.load(open(os.path.join(out, "run_log.json")))
    return {s["stage"]: s["status"] for s in log["stages"]}


RESULTS = ["rank/country.json", "rank/country.csv", "tasks/qa-country/alpha-1/eval.json",
           "tasks/qa-country/alpha-1/eval.csv"]


def snapshot(out):
    return {f: open(os.path.join(out, f), "rb").read() for f in RESULTS}


def test_cache(tmp):
    out = os.path.join(tmp, "out")
    xp = write(os.path.join(tmp, "xp.json"), experiment(tmp, out))
    run(xp)
    st = statuses(out)
    names = ["reps", "rank:country", "sweep:qa-country:alpha-1", "report"]
    assert list(st) == names and set(st.values()) == {"computed"}, st
    ev = json.load(open(os.path.join(out, "tasks/qa-country/alpha-1/eval.json")))
    assert len(ev["results"]) == 2 * (2 + 4), len(ev["results"])
    for f in ("report.md", "report.html", "rank/country.heatmap.svg", "tasks/qa-country/alpha-1/f1_vs_k.svg"):
        assert os.path.getsize(os.path.join(out, f)) > 0, f
    html = open(os.path.join(out, "report.html")).read()
    assert html.count("data:image/svg+xml;base64,") >= 3 and "Concept" in html, "report.html embeds its figures"
    first = snapshot(out)
    run(xp)
    st = statuses(out)
    assert set(st.values()) == {"cached"}, f"second run recomputed: {st}"
    assert snapshot(out) == first
    # Only alpha changes: representations and ranking are reused, the new sweep runs.
    write(xp, experiment(tmp, out, alpha=[-1, 0]))
    run(xp)
    st = statuses(out)
    assert st["reps"] == st["rank:country"] == st["sweep:qa-country:alpha-1"] == "cached", st
    assert st["sweep:qa-country:alpha0"] == "computed" and st["report"] == "computed", st
    # --force rank: the ranking and what depends on it, not the representations.
    run(xp, "--force", "rank")
    st = statuses(out)
    assert st["reps"] == "cached" and all(v == "computed" for k, v in st.items() if k != "reps"), st
    assert snapshot(out) == first, "a forced recomputation changed the results"
    # A truncated cached output and a corrupt one are recomputed, never trusted.
    csv = os.path.join(out, "rank/country.csv")
    open(csv, "r+b").truncate(os.path.getsize(csv) // 2)
    evj = os.path.join(out, "tasks/qa-country/alpha-1/eval.json")
    b = bytearray(open(evj, "rb").read())
    b[len(b) // 2] ^= 0x01
    open(evj, "wb").write(bytes(b))
    run(xp)
    st = statuses(out)
    assert st["reps"] == "cached" and st["rank:country"] == "computed", st
    assert st["sweep:qa-country:alpha-1"] == "computed", st
    assert snapshot(out) == first, "recomputed outputs differ"
    # A corrupt checkpoint of one configuration: warned about and recomputed.
    ck = os.path.join(out, "tasks/qa-country/runs/SOMP_k_2.a-1.json")
    j = json.load(open(ck))
    j["payload"]["values"][0] = repr(float(j["payload"]["values"][0]) + 1)
    json.dump(j, open(ck, "w"))
    os.remove(evj)  # the sweep stage reruns (a missing output), its checkpoints are checked
    p = run(xp)
    assert "does not match its hash" in p.stderr, p.stderr[-400:]
    assert statuses(out)["sweep:qa-country:alpha-1"] == "computed"
    assert snapshot(out) == first, "results after a corrupt checkpoint differ"
    return f"{len(names)} stages computed, then cached; alpha-only, --force, corrupt outputs and checkpoint"


def test_kill_resume(tmp):
    """One uninterrupted run, then the same experiment killed (SIGKILL) in the middle of its
    sweep and resumed: byte-identical result files, and the resumed run reuses what finished."""
    out = os.path.join(tmp, "kill")
    xp = write(os.path.join(tmp, "kill.json"), experiment(tmp, out, random=6, max_new=12))
    run(xp)
    ref = snapshot(out)
    shutil.rmtree(out)
    runs = os.path.join(out, "tasks/qa-country/runs")
    p = subprocess.Popen([BIN, "run", xp, "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if os.path.isdir(runs) and len([f for f in os.listdir(runs) if f.endswith(".json")]) >= 3:
            break
        time.sleep(0.005)
    assert p.poll() is None, "the run finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait()
    done = len([f for f in os.listdir(runs) if f.endswith(".json")])
    total = 1 + 2 * (2 + 6)
    assert done < total, f"killed after every configuration ({done})"
    r = run(xp)
    st = statuses(out)
    assert st["reps"] == "cached" and st["rank:country"] == "cached", st
    assert st["sweep:qa-country:alpha-1"] == "computed", st
    got = snapshot(out)
    diff = [f for f in RESULTS if got[f] != ref[f]]
    assert not diff, f"resumed results differ from the uninterrupted run: {diff}"
    del r
    ev = json.loads(got["tasks/qa-country/alpha-1/eval.json"])
    f1 = ev["unedited"]["f1_country"] + ev["unedited"]["f1_other"]
    return f"killed with {done}/{total} configurations done; resumed results byte-identical (unedited F1 sum {f1:.3f})"


def test_bad_files(tmp):
    good = experiment(tmp, os.path.join(tmp, "never"))
    cases = []

    def case(name, mutate, expect):
        x = json.loads(json.dumps(good))
        mutate(x)
        cases.append((name, x, expect))

    case("unknown key", lambda x: x["tasks"][0].update(alhpa=[-1]), "tasks[0].alhpa")
    case("wrong type", lambda x: x["somp"].update(k="fifty"), "somp.k")
    case("missing file", lambda x: x["data"].update(train=os.path.join(tmp, "nope.jsonl")), "data.train")
    case("k over the head count", lambda x: x["tasks"][0].update(k=[8, 300]), "tasks[0].k")
    case("unknown concept", lambda x: x["tasks"][0].update(concept="colour"), "tasks[0].concept")
    case("task kind refused by name", lambda x: x["tasks"][0].update(kind="caption"), "tasks[0].kind")
    case("missing model", lambda x: x.pop("model"), "'model'")
    case("toxicity key on a QA task", lambda x: x["tasks"][0].update(threshold=0.7), "tasks[0].threshold")
    case("toxicity task without data", lambda x: x["tasks"][0].update(kind="toxicity"), "tasks[0].data")
    case("unknown positions", lambda x: x.update(representation={"positions": "middle"}), "representation.positions")
    case("unknown device", lambda x: x.update(device="tpu"), "'device'")
    case("alpha not a list of numbers", lambda x: x["tasks"][0].update(alpha=["-1"]), "tasks[0].alpha")
    case("threshold out of range", lambda x: x["tasks"][0].update(
        kind="toxicity", data="tests/fixtures/toxicity/rtp_prompts.jsonl", threshold=2), "tasks[0].threshold")
    for name, x, expect in cases:
        xp = write(os.path.join(tmp, "bad.json"), x)
        p = subprocess.run([BIN, "run", xp], capture_output=True, text=True)
        assert p.returncode != 0, f"{name}: exited 0"
        assert xp in p.stderr and expect in p.stderr, f"{name}: {p.stderr.strip()[-300:]}"
        assert not os.path.exists(os.path.join(tmp, "never")), f"{name}: wrote its output folder"
    xp = write(os.path.join(tmp, "bad.json"), "{\"model\": ")
    p = subprocess.run([BIN, "run", xp], capture_output=True, text=True)
    assert p.returncode != 0 and xp in p.stderr, p.stderr
    xp = write(os.path.join(tmp, "dry.json"), good)
    for opt, val in (("--force", "bogus"), ("--device", "tpu")):
        p = subprocess.run([BIN, "run", xp, opt, val], capture_output=True, text=True)
        assert p.returncode == 2 and f"{opt} '{val}'" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(tmp, "never")), f"{opt} {val}: wrote its output folder"
    p = subprocess.run([BIN, "run", xp, "--dry-run"], capture_output=True, text=True)
    assert p.returncode == 0 and "would compute" in p.stderr, p.stderr[-300:]
    assert not os.path.exists(os.path.join(tmp, "never")), "--dry-run wrote its output folder"
    return f"{len(cases) + 1} bad files and 2 bad options refused by name, nothing written; --dry-run writes nothing"


def test_toxicity(tmp):
    """Two concepts (country, toxic words) and two tasks (QA, toxicity on the RTP fixture) in one
    file: one capture shared by both rankings, both sweeps, one report."""
    out = os.path.join(tmp, "tox")
    x = experiment(tmp, out, k=[2], random=1)
    x["concepts"].append({"name": "toxic", "words": "wordlists/toxic.txt"})
    x["tasks"].append({"kind": "toxicity", "concept": "toxic", "data": "tests/fixtures/toxicity/rtp_prompts.jsonl",
                       "k": [2], "random": 1, "max_new": 4})
    xp = write(os.path.join(tmp, "tox.json"), x)
    run(xp)
    st = statuses(out)
    names = ["reps", "rank:country", "rank:toxic", "sweep:qa-country:alpha-1", "sweep:toxicity-toxic:alpha-1",
             "report"]
    assert list(st) == names and set(st.values()) == {"computed"}, st
    ev = json.load(open(os.path.join(out, "tasks/toxicity-toxic/alpha-1/eval.json")))
    assert ev["task"] == "toxicity" and len(ev["results"]) == 3 and ev["prompts"] > 0, ev.get("results")
    md = open(os.path.join(out, "report.md")).read()
    assert "toxicity mitigation" in md and "question answering" in md, "report misses a task"
    run(xp)
    assert set(statuses(out).values()) == {"cached"}, statuses(out)
    return f"{len(names)} stages, then all cached; {ev['prompts']} RTP prompts"


def test_shipped(tmp):
    """Every experiments/*.json is a valid experiment file: --dry-run on it (its model present) or
    a parse that fails only on the absent model file."""
    if not os.path.exists("results/data/qa/train.jsonl"):
        subprocess.run([sys.executable, "scripts/build_qa.py", "--out-dir", "results/data/qa"], check=True,
                       capture_output=True)
    n_dry = n_parsed = 0
    for f in sorted(os.listdir("experiments")):
        path = os.path.join("experiments", f)
        x = json.load(open(path))
        p = subprocess.run([BIN, "run", path, "--dry-run", "--device", "cpu"], capture_output=True, text=True)
        if os.path.exists(x["model"]):
            assert p.returncode == 0 and ("would compute" in p.stderr or "cached" in p.stderr), f"{f}: {p.stderr[-300:]}"
            n_dry += 1
        else:
            assert p.returncode != 0 and "key 'model'" in p.stderr, f"{f}: {p.stderr[-300:]}"
            n_parsed += 1
    assert n_dry >= 1, "no shipped experiment could be checked"
    return f"{n_dry} dry-run, {n_parsed} checked up to their absent model"


def main():
    os.chdir(ROOT)
    if not os.path.exists(GGUF):
        print(f"skipped: {GGUF} not found (scripts/fetch_model.sh smollm2)")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "scripts/build_qa.py", "--out-dir", os.path.join(tmp, "qa")], check=True,
                       capture_output=True)
        check("bad experiment files", lambda: test_bad_files(tmp))
        check("shipped experiments/*.json", lambda: test_shipped(tmp))
        check("stage cache (first run, re-run, alpha, force)", lambda: test_cache(tmp))
        check("SIGKILL mid-sweep, resume byte-identical", lambda: test_kill_resume(tmp))
        check("QA + toxicity in one experiment", lambda: test_toxicity(tmp))
    print(f"run: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
