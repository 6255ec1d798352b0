#!/usr/bin/env python3
"""test_vision_pursuit.py: Head Pursuit on images through the CLI, on the tiny random LLaVA-NeXT
(tests/fixtures/tiny-llava; numpy only; exit 0 pass, 1 fail, 77 skipped).

  capture parity   `heads --images` over the image tokens (and the other prompt tokens, and the
                   last token) equals the mean of HF's per-head contributions c[l,h] = z W_O[:,h]^T
                   at those positions (ref/small.capture.npy, made by make_llava_fixtures.py with a
                   hook on o_proj); the check bites (the image mean is not the text mean)
  readers          an image folder made here (2 classes x 3 PNGs from a minimal PNG writer, plus a
                   non-image file that must be skipped); IDX files made here (plain and gzip): the
                   same pixels as PNGs give bit-identical representations, labels reach the right
                   images through the class-balanced --limit/--offset order; bad IDX files
                   (truncated, wrong magic, wrong element type, trailing bytes, label count, broken
                   gzip) fail with the file and offset named; an empty class folder fails
  pipeline         rank -> heads -> eval classify and eval caption with --top 1,2 --random 2: the
                   outputs exist, the edited head sets are the ranking's top k, random controls are
                   disjoint from the SOMP heads with the same per-layer counts, and alpha = 1 gives
                   the unedited answers under every edit
  captions         a Flickr30k-format caption file: images in file order, the reference captions'
                   keyword count, a missing image and a malformed line named; CIDEr-D in eval.json,
                   eval.csv, answers.csv and cider_vs_k_alpha<A>.svg, consistent between them and
                   normalised to the unedited run; with the unedited answers as references (plus a
                   third image of other words) every unedited caption scores what CIDEr-D gives a
                   candidate equal to its only reference: 10 * min(words, 4) / 4
  Fashion-MNIST    (when Debian's dataset-fashion-mnist is installed) the first 20 test images read
                   through the gzip IDX reader equal the same pixels given as PNG files

The tiny model's weights are random: its answers are noise; only the mechanics are tested.
HP_BIN overrides the binary (default ./headpursuit), HP_FIXTURES the fixtures directory.
"""
import csv
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("HP_BIN", os.path.join(ROOT, "headpursuit"))
FIX = os.environ.get("HP_FIXTURES", os.path.join(ROOT, "tests", "fixtures"))
MODEL = os.path.join(FIX, "tiny-llava")
FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
# fp32 on both sides, 2 decoder layers: only the order of accumulation differs (measured ~1e-6,
# as in test_llava_parity.py); averaging over the wrong positions moves it by O(1).
TOL = 1e-4
SEED = int.from_bytes(os.urandom(4), "little")
counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}


class SkipTest(Exception):
    pass


def check(name, fn, *args):
    try:
        msg, status = fn(*args), "PASS"
    except SkipTest as s:
        msg, status = f"skipped: {s}", "SKIP"
    except Exception as ex:  # any exception is a failure
        msg, status = f"{type(ex).__name__}: {ex}", "FAIL"
    counts[status] += 1
    print(f"{status}  {name:44s} {msg or ''}", flush=True)


def run(*args, ok=True):
    p = subprocess.run([BIN, *[str(a) for a in args]], capture_output=True, text=True, timeout=300)
    if ok and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}: {p.stderr.strip()[-400:]}")
    return p


def must_fail(expect, *args):
    """The command must exit 1 with an error line containing every string of expect."""
    p = run(*args, ok=False)
    err = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    if p.returncode != 1 or not err.startswith("headpursuit: ") or not all(s in err for s in expect):
        raise AssertionError(f"exit {p.returncode}, expected 1 with {expect}: {err!r}")
    return err


def write_png(path, rgb):
    """A minimal RGB8 PNG writer (no filter, one IDAT)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def idx_bytes(arr, magic_type=8):
    return struct.pack(">BBBB", 0, 0, magic_type, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) \
        + arr.astype(np.uint8).tobytes()


def read_reps(path):
    """heads [L, H, N, D] of a representations file (safetensors)."""
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    t = json.loads(b[8:8 + n])["heads"]
    lo, hi = t["data_offsets"]
    return np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=np.float32).reshape(t["shape"])


def reps_of(tmp, name, images, *extra):
    out = os.path.join(tmp, f"{name}.reps")
    if os.path.exists(out):
        os.remove(out)
    run("heads", MODEL, "--images", images, "--reps", out, "-k", 1, "--device", "cpu", "--quiet", *extra)
    return read_reps(out)


# ---------------------------------------------------------------- capture parity

def test_capture(tmp):
    cases = json.load(open(os.path.join(MODEL, "ref", "cases.json")))["cases"]
    case = next(c for c in cases if "text" in c)
    ref = np.load(os.path.join(MODEL, "ref", f"{case['name']}.capture.npy"))  # [3, L, H, D]
    d = os.path.join(tmp, "one")
    os.makedirs(d)
    shutil.copy(os.path.join(MODEL, "ref", f"{case['name']}.png"), d)
    msgs, outs = [], {}
    for i, pos in enumerate(("image", "text", "last")):
        out = reps_of(tmp, "cap_" + pos, d, "--prompt", case["text"], "--positions", pos)
        if out.shape[2] != 1 or not np.isfinite(out).all():
            raise AssertionError(f"{pos}: shape {out.shape} or non-finite values")
        outs[pos] = out[:, :, 0]
        err = float(np.abs(outs[pos] - ref[i]).max() / np.abs(ref[i]).max())
        if not err <= TOL:
            raise AssertionError(f"{pos}: max rel err {err:.2e} > {TOL:g}")
        msgs.append(f"{pos} {err:.1e}")
    bite = float(np.abs(outs["text"] - ref[0]).max() / np.abs(ref[0]).max())
    if bite <= TOL:
        raise AssertionError(f"the text-token mean matches the image reference too ({bite:.1e}): the check cannot bite")
    return f"{case['name']}.png, max rel err " + ", ".join(msgs) + f"; text vs image ref {bite:.1e}"


# ---------------------------------------------------------------- readers

def make_folder(tmp, rng):
    root = os.path.join(tmp, "imgs")
    for cls in ("zebra", "apple"):  # sorted: apple = class 0
        os.makedirs(os.path.join(root, cls))
        for i in range(3):
            h, w = rng.randint(12, 70, size=2)
            write_png(os.path.join(root, cls, f"{i}.png"), rng.randint(0, 256, (h, w, 3)).astype(np.uint8))
    with open(os.path.join(root, "apple", "notes.txt"), "w") as f:
        f.write("not an image\n")
    return root


def test_idx(tmp, rng):
    n, h, w = 7, 28, 28
    imgs = rng.randint(0, 256, (n, h, w)).astype(np.uint8)
    labels = np.array([2, 0, 1, 2, 2, 0, 1], dtype=np.uint8)
    d = os.path.join(tmp, "idx")
    os.makedirs(d)
    with open(os.path.join(d, "t-images-idx3-ubyte"), "wb") as f:
        f.write(idx_bytes(imgs))
    with open(os.path.join(d, "t-labels-idx1-ubyte"), "wb") as f:
        f.write(idx_bytes(labels))
    with gzip.open(os.path.join(d, "g-images-idx3-ubyte.gz"), "wb") as f:
        f.write(idx_bytes(imgs))
    with gzip.open(os.path.join(d, "g-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(idx_bytes(labels))
    png = os.path.join(d, "png")
    os.makedirs(png)
    for i in range(n):  # grey as RGB, named so that sorted order is file order
        write_png(os.path.join(png, f"{i:02d}.png"), np.repeat(imgs[i][:, :, None], 3, axis=2))
    a = reps_of(tmp, "idx_plain", os.path.join(d, "t-images-idx3-ubyte"), "--prompt", "x")
    b = reps_of(tmp, "idx_gz", os.path.join(d, "g-images-idx3-ubyte.gz"), "--prompt", "x")
    c = reps_of(tmp, "idx_png", png, "--prompt", "x")
    if a.tobytes() != c.tobytes() or b.tobytes() != c.tobytes():
        raise AssertionError("IDX images (plain or gzip) differ from the same pixels as PNG files")

    # Labels found beside the images; --offset/--limit: class-balanced order, disjoint splits.
    rk = os.path.join(tmp, "idx_rank.json")
    run("rank", MODEL, "--images", os.path.join(d, "g-images-idx3-ubyte.gz"), "-k", 2, "--out", rk,
        "--device", "cpu", "--quiet")
    r = json.load(open(rk))
    if r["classes"] != ["0", "1", "2"] or r["samples"] != n:
        raise AssertionError(f"classes {r['classes']}, samples {r['samples']}")
    seen = []
    for off, lim in ((0, 3), (3, 10)):
        ev = os.path.join(tmp, f"idx_eval_{off}")
        run("eval", MODEL, "--task", "classify", "--images", os.path.join(d, "t-images-idx3-ubyte"), "--edit", rk,
            "--top", 1, "--random", 0, "--offset", off, "--limit", lim, "--max-new", 2, "--out-dir", ev,
            "--device", "cpu", "--quiet")
        rows = [x for x in csv.DictReader(open(os.path.join(ev, "answers.csv"), encoding="utf-8"))
                if x["method"] == "unedited"]
        for x in rows:
            i = int(x["image"].lstrip("#"))
            if x["class"] != str(labels[i]):
                raise AssertionError(f"image #{i}: class {x['class']}, label {labels[i]}")
        seen.append([int(x["image"].lstrip("#")) for x in rows])
    # round robin over classes 0, 1, 2 in file order: #1 (0), #2 (1), #0 (2), #5, #6, #3, #4
    if seen != [[1, 2, 0], [5, 6, 3, 4]]:
        raise AssertionError(f"--offset/--limit order {seen}, expected [[1, 2, 0], [5, 6, 3, 4]]")
    return f"{n} images {h}x{w}: plain = gzip = PNG bit for bit; labels and splits {seen}"


def test_bad_inputs(tmp, rng):
    imgs = rng.randint(0, 256, (3, 4, 5)).astype(np.uint8)
    good = idx_bytes(imgs)
    d = os.path.join(tmp, "bad")
    os.makedirs(d)

    def put(name, data, gz=False):
        p = os.path.join(d, name)
        with (gzip.open(p, "wb") if gz else open(p, "wb")) as f:
            f.write(data)
        return p

    gzdata = gzip.compress(good)
    cases = [
        (put("trunc-images-idx3-ubyte", good[:-7]), ["trunc-images-idx3-ubyte", "truncated at offset 69"]),
        (put("magic-images-idx3-ubyte", idx_bytes(imgs[0, 0])), ["magic-images-idx3-ubyte", "offset 0",
                                                                    "0x00000801", "expected 0x00000803"]),
        (put("type-images-idx3-ubyte", idx_bytes(imgs, 0x0D)), ["offset 2", "element type 0x0d"]),
        (put("extra-images-idx3-ubyte", good + b"xy"), ["unexpected bytes after offset 76"]),
        (put("hdr-images-idx3-ubyte", good[:10]), ["truncated at offset 10", "header"]),
        (put("empty-images-idx3-ubyte", b""), ["truncated at offset 0"]),
        (put("gzt-images-idx3-ubyte.gz", gzdata[:len(gzdata) // 2]), ["gzt-images-idx3-ubyte.gz", "truncated",
                                                                      "after gunzip"]),
        (put("notidx-images-idx3-ubyte", b"\x89PNG\r\n\x1a\n" + good), ["offset 0", "not an IDX header"]),
    ]
    put("cnt-images-idx3-ubyte", good)
    put("cnt-labels-idx1-ubyte", idx_bytes(np.array([0, 1], dtype=np.uint8)))
    cases.append((os.path.join(d, "cnt-images-idx3-ubyte"), ["cnt-labels-idx1-ubyte", "2 labels", "3 images"]))
    for path, expect in cases:
        must_fail(expect, "heads", MODEL, "--images", path, "--prompt", "x", "--device", "cpu", "--quiet")
    empty = os.path.join(d, "folder")
    os.makedirs(os.path.join(empty, "a"))
    os.makedirs(os.path.join(empty, "b"))
    write_png(os.path.join(empty, "a", "x.png"), rng.randint(0, 256, (4, 4, 3)).astype(np.uint8))
    must_fail([os.path.join(empty, "b"), "without PNG or JPEG"], "heads", MODEL, "--images", empty, "--quiet")
    return f"{len(cases) + 1} broken inputs fail naming file and offset"


# ---------------------------------------------------------------- pipeline

def per_layer(heads):
    out = {}
    for item in filter(None, heads.split(",")):
        layer = int(item.split(".")[0])
        out[layer] = out.get(layer, 0) + 1
    return out


def check_eval(ev, rk, task, alphas):
    e = json.load(open(os.path.join(ev, "eval.json")))
    for f in ("eval.csv", "answers.csv", "heads_heatmap.svg"):
        if not os.path.getsize(os.path.join(ev, f)):
            raise AssertionError(f"{f} missing or empty")
    metric = "accuracy" if task == "classify" else "keywords"
    for a in alphas:
        if not os.path.getsize(os.path.join(ev, f"{metric}_vs_k_alpha{a:g}.svg")):
            raise AssertionError(f"{metric}_vs_k_alpha{a:g}.svg missing")
    r = json.load(open(rk))
    somp = {}
    n_rows = 0
    for row in e["results"]:
        n_rows += 1
        k, heads = row["k"], row["heads"]
        if row["method"] == "somp":
            want = ",".join(f"{l}.{h}" for l, h in r["somp_order"][:k])
            if heads != want:
                raise AssertionError(f"SOMP k={k} edited {heads}, the ranking's top {k} are {want}")
            somp[(row["alpha"], k)] = heads
        elif row["method"] == "logit_lens":
            want = ",".join(f"{l}.{h}" for l, h in r["ll_order"][:k])
            if heads != want:
                raise AssertionError(f"LL k={k} edited {heads}, the ranking's top {k} are {want}")
    for row in e["results"]:
        if row["method"] != "random":
            continue
        s = somp[(row["alpha"], row["k"])]
        if set(s.split(",")) & set(row["heads"].split(",")):
            raise AssertionError(f"random draw {row['heads']} overlaps the SOMP heads {s}")
        if per_layer(s) != per_layer(row["heads"]):
            raise AssertionError(f"random draw {row['heads']}: per-layer counts differ from {s}")
    want_rows = len(alphas) * 2 * (2 + 2)
    if n_rows != want_rows or len(e["summary"]) != len(alphas) * 2 * 2:
        raise AssertionError(f"{n_rows} result rows / {len(e['summary'])} summary rows, expected {want_rows}")
    return e


def answers_by_edit(ev):
    rows = list(csv.DictReader(open(os.path.join(ev, "answers.csv"), encoding="utf-8")))
    base = {x["image"]: x["answer"] for x in rows if x["method"] == "unedited"}
    return rows, base


def test_pipeline(tmp, folder):
    rk = os.path.join(tmp, "rank.json")
    run("rank", MODEL, "--images", folder, "-k", 3, "--out", rk, "--device", "cpu", "--quiet", "--object", "fruit")
    r = json.load(open(rk))
    if r["classes"] != ["apple", "zebra"] or r["samples"] != 6 or "notes.txt" in json.dumps(r):
        raise AssertionError(f"classes {r['classes']}, samples {r['samples']}")
    if sorted(map(tuple, r["somp_order"])) != [(l, h) for l in range(2) for h in range(4)]:
        raise AssertionError("somp_order is not a permutation of the 8 heads")
    if "fruit is depicted" not in r["prompt"] or "apple, zebra. Answer:" not in r["prompt"]:
        raise AssertionError(f"prompt {r['prompt']!r}")
    for f in (rk[:-5] + ".csv", rk[:-5] + ".heatmap.svg"):
        if not os.path.getsize(f):
            raise AssertionError(f"{f} missing")
    # samples of different lengths packed into one forward must not mix
    one, four = (reps_of(tmp, f"b{b}", folder, "--batch", b) for b in (1, 4))
    err = float(np.abs(one - four).max() / np.abs(one).max())
    if not err <= TOL:
        raise AssertionError(f"--batch 1 and --batch 4 differ: max rel err {err:.1e}")
    hj = os.path.join(tmp, "heads.json")
    run("heads", MODEL, "--images", folder, "-k", 4, "--heads", "0.1,1.2", "--out", hj, "--device", "cpu", "--quiet")
    h = json.load(open(hj))
    if [(x["layer"], x["head"]) for x in h] != [(0, 1), (1, 2)] or any(len(x["tokens"]) != 4 for x in h):
        raise AssertionError(f"heads.json: {[(x['layer'], x['head'], len(x['tokens'])) for x in h]}")
    def common(ranking):
        return ["--edit", ranking, "--top", "1,2", "--random", 2, "--device", "cpu", "--quiet", "--batch", 4]

    ev = os.path.join(tmp, "ev_cls")
    run("eval", MODEL, "--task", "classify", "--images", folder, "--max-new", 4, "--out-dir", ev, *common(rk))
    e = check_eval(ev, rk, "classify", [-1])
    if [a["class"] for a in e["unedited_answers"]] != ["apple"] * 3 + ["zebra"] * 3:
        raise AssertionError(f"classes of the answers {[a['class'] for a in e['unedited_answers']]}")
    # caption: a flat folder; the ranking for colours
    flat = os.path.join(tmp, "flat")
    os.makedirs(flat)
    for i, f in enumerate(sorted(os.listdir(os.path.join(folder, "apple")))[:2]):
        shutil.copy(os.path.join(folder, "apple", f), os.path.join(flat, f"p{i}.png"))
    colors = os.path.join(ROOT, "wordlists", "colors.txt")
    rkc = os.path.join(tmp, "rank_colors.json")
    run("rank", MODEL, "--images", flat, "--prompt-kind", "caption", "--concept", colors, "-k", 2, "--out", rkc,
        "--device", "cpu", "--quiet")
    evc = os.path.join(tmp, "ev_cap")
    run("eval", MODEL, "--task", "caption", "--images", flat, "--keywords", colors, "--max-new", 6,
        "--out-dir", evc, *common(rkc))
    ec = check_eval(evc, rkc, "caption", [-1, 5])
    if "cider" in ec["unedited"] or any(n.startswith("cider") for n in os.listdir(evc)):
        raise AssertionError("CIDEr-D reported without reference captions")
    # alpha = 1 on every head set: every answer is the unedited one
    ev1 = os.path.join(tmp, "ev_one")
    run("eval", MODEL, "--task", "classify", "--images", folder, "--max-new", 4, "--alpha", 1, "--out-dir", ev1,
        *common(rk))
    rows, base = answers_by_edit(ev1)
    same = all(x["answer"] == base[x["image"]] for x in rows)
    rows_m1, base_m1 = answers_by_edit(ev)
    if not same or len(rows) != 6 * (1 + 2 * 4) or base != base_m1:
        raise AssertionError("alpha = 1 changed an answer (or the unedited answers differ between runs)")
    changed = sum(x["answer"] != base_m1[x["image"]] for x in rows_m1)
    if changed == 0:  # else the alpha = 1 check could not fail
        raise AssertionError("alpha = -1 left every answer unchanged: the edits do not reach generation")
    e1 = json.load(open(os.path.join(ev1, "eval.json")))
    return f"batch 1 = 4 ({err:.0e}); rank/heads/eval classify+caption; {len(rows)} answers at alpha 1 all unedited " \
           f"({changed} of {len(rows_m1)} differ at alpha -1), e.g. {e1['unedited_answers'][0]['answer']!r}"


def test_captions(tmp, folder):
    d = os.path.join(tmp, "flickr")
    os.makedirs(d)
    src = sorted(os.listdir(os.path.join(folder, "zebra")))
    for i in range(2):
        shutil.copy(os.path.join(folder, "zebra", src[i]), os.path.join(d, f"{100 + i}.jpg.png"))
    tok = os.path.join(d, "results_20130124.token")
    with open(tok, "w") as f:  # colours: red; none; Blue + navy (case-insensitive, whole words)
        f.write("101.jpg.png#0\tA red dog runs .\r\n100.jpg.png#0\tTwo reddish dogs play .\n"
                "101.jpg.png#1\tBlue sky over the navy-blue sea .\n")
    colors = os.path.join(ROOT, "wordlists", "colors.txt")
    rk = os.path.join(tmp, "flickr_rank.json")
    run("rank", MODEL, "--images", d, "--captions", tok, "--prompt-kind", "caption", "--concept", colors, "-k", 2,
        "--out", rk, "--device", "cpu", "--quiet")
    ev = os.path.join(tmp, "flickr_eval")
    run("eval", MODEL, "--task", "caption", "--images", d, "--captions", tok, "--keywords", colors, "--edit", rk,
        "--top", 1, "--random", 1, "--max-new", 3, "--out-dir", ev, "--device", "cpu", "--quiet")
    e = json.load(open(os.path.join(ev, "eval.json")))
    ref = e["reference_captions"]
    names = [a["image"] for a in e["unedited_answers"]]
    if names != ["101.jpg.png", "100.jpg.png"] or ref["captions"] != 3 or ref["keywords_per_caption"] != 4 / 3 \
            or ref["captions_with_keyword"] != 2 / 3:
        raise AssertionError(f"images {names}, reference captions {ref}")
    cider_msg = check_cider(ev, e, d, tok, colors, rk, folder)
    with open(tok, "a") as f:
        f.write("missing.jpg#0\tA cat .\n")
    must_fail(["missing.jpg", "line 4", "results_20130124.token"], "heads", MODEL, "--images", d, "--captions", tok,
              "--prompt-kind", "caption", "--quiet")
    with open(tok, "w") as f:
        f.write("101.jpg.png#0\tfine\n101.jpg.png no tab here\n")
    must_fail(["results_20130124.token:2", "IMAGE#N"], "heads", MODEL, "--images", d, "--captions", tok,
              "--prompt-kind", "caption", "--quiet")
    return "2 images in file order, 3 reference captions: 4 colour words; missing image / bad line named; " + cider_msg


def cider_outputs(ev):
    """eval.json, and per configuration (alpha, k, method, draw) the per-image CIDEr-D of answers.csv."""
    e = json.load(open(os.path.join(ev, "eval.json")))
    per = {}
    for x in csv.DictReader(open(os.path.join(ev, "answers.csv"), encoding="utf-8")):
        key = ("", "0", "unedited", "-1") if x["method"] == "unedited" else (x["alpha"], x["k"], x["method"], x["draw"])
        per.setdefault(key, []).append(float(x["cider"]))
    n_conf = 1 + len(e["alphas"]) * 1 * (2 + e["random_draws"])
    if len(per) != n_conf or len(e["results"]) != n_conf - 1:
        raise AssertionError(f"{len(per)} configurations in answers.csv, {len(e['results'])} result rows")
    base = e["unedited"]["cider"]
    if abs(np.mean(per[("", "0", "unedited", "-1")]) - base) > 1e-12:
        raise AssertionError(f"unedited CIDEr-D {base} is not the mean of answers.csv's")
    for r in e["results"]:
        key = (f"{r['alpha']:g}", str(r["k"]), r["method"], str(r.get("draw", -2 if r["method"] == "somp" else -1)))
        if abs(np.mean(per[key]) - r["cider"]) > 1e-12:
            raise AssertionError(f"{key}: CIDEr-D {r['cider']} is not the mean of answers.csv's {per[key]}")
        want = r["cider"] / base if base > 0 else None
        if (want is None) != (r["norm_cider"] is None) or (want is not None and abs(r["norm_cider"] - want) > 1e-12):
            raise AssertionError(f"{key}: norm_cider {r['norm_cider']}, expected {want}")
    rows = [x for x in csv.DictReader(open(os.path.join(ev, "eval.csv"))) if x["metric"] == "cider"]
    if len(rows) != len(e["alphas"]) or len([x for x in e["summary"] if x["metric"] == "cider"]) != len(rows):
        raise AssertionError(f"{len(rows)} CIDEr-D rows in eval.csv for {len(e['alphas'])} alphas")
    for a in e["alphas"]:
        if not os.path.getsize(os.path.join(ev, f"cider_vs_k_alpha{a:g}.svg")):
            raise AssertionError(f"cider_vs_k_alpha{a:g}.svg missing")
    return e, per[("", "0", "unedited", "-1")]


def check_cider(ev, e, d, tok, colors, rk, folder):
    cider_outputs(ev)
    # References = the unedited answers (whitespace folded) and a third image of words no tiny-model
    # answer holds: every n-gram of an answer then has df <= 2 < 3 images, so a caption equal to
    # its only reference has a clipped cosine of 1 at each n it has n-grams for, no length penalty.
    ans = [" ".join(a["answer"].split()) for a in e["unedited_answers"]]
    shutil.copy(os.path.join(folder, "apple", sorted(os.listdir(os.path.join(folder, "apple")))[0]),
                os.path.join(d, "102.jpg.png"))
    tok2 = os.path.join(d, "answers.token")
    with open(tok2, "w") as f:
        for name, a in zip(("101.jpg.png", "100.jpg.png"), ans):
            f.write(f"{name}#0\t{a or 'qqqq'}\n")
        f.write("102.jpg.png#0\tqqqq zzzz .\n")
    ev2 = os.path.join(os.path.dirname(ev), "flickr_eval_cider")
    run("eval", MODEL, "--task", "caption", "--images", d, "--captions", tok2, "--keywords", colors, "--edit", rk,
        "--top", 1, "--random", 1, "--max-new", 3, "--out-dir", ev2, "--device", "cpu", "--quiet")
    e2, unedited = cider_outputs(ev2)
    if [" ".join(a["answer"].split()) for a in e2["unedited_answers"][:2]] != ans:
        raise AssertionError("the unedited answers changed with the caption file")
    for a, v in zip(ans, unedited[:2]):
        words = any(ch.isalnum() or ord(ch) > 127 for ch in a)
        if not (any(abs(v - 2.5 * m) < 1e-9 for m in (1, 2, 3, 4)) or (v == 0 and not words)):
            raise AssertionError(f"answer {a!r} as its own reference: CIDEr-D {v}, expected 2.5, 5, 7.5 or 10")
    if unedited[2] != 0 or not e2["unedited"]["cider"] > 0:
        raise AssertionError(f"per-image CIDEr-D {unedited}: the third image must score 0, the mean > 0")
    return f"CIDEr-D of the answers against themselves {[round(v, 3) for v in unedited]}"


def test_fashion(tmp):
    if not os.path.exists(FASHION):
        raise SkipTest(f"{FASHION} not installed (apt-get install dataset-fashion-mnist)")
    with gzip.open(FASHION, "rb") as f:
        b = f.read(16 + 20 * 784)
    imgs = np.frombuffer(b[16:], dtype=np.uint8).reshape(20, 28, 28)
    png = os.path.join(tmp, "fashion_png")
    os.makedirs(png)
    for i in range(20):
        write_png(os.path.join(png, f"{i:02d}.png"), np.repeat(imgs[i][:, :, None], 3, axis=2))
    # Without its labels file beside it the set is unlabelled, so --limit keeps the file order.
    only = os.path.join(tmp, "fashion-only-images.gz")
    shutil.copy(FASHION, only)
    a = reps_of(tmp, "fashion_idx", only, "--prompt", "x", "--limit", 20)
    c = reps_of(tmp, "fashion_png", png, "--prompt", "x")
    if a.shape[2] != 20 or a.tobytes() != c.tobytes():
        raise AssertionError("the first 20 Fashion-MNIST images differ from their PNG copies")
    rk = os.path.join(tmp, "fashion_rank.json")
    run("rank", MODEL, "--images", FASHION, "--classes", os.path.join(ROOT, "wordlists", "fashion_mnist.txt"),
        "--object", "clothing item", "--limit", 20, "-k", 2, "--out", rk, "--device", "cpu", "--quiet")
    r = json.load(open(rk))
    if r["samples"] != 20 or r["classes"][0] != "T-shirt/top" or len(r["classes"]) != 10:
        raise AssertionError(f"samples {r['samples']}, classes {r['classes']}")
    return "first 20 test images: gzip IDX = PNG bit for bit; 10 class names"


def main():
    if not os.path.exists(os.path.join(MODEL, "ref", "cases.json")):
        print(f"skipped: no fixture at {MODEL}")
        return 77
    if not os.path.exists(BIN):
        print(f"skipped: no binary {BIN}")
        return 77
    print(f"seed {SEED}")
    rng = np.random.RandomState(SEED)
    tmp = tempfile.mkdtemp(prefix="hp_vision_")
    try:
        folder = make_folder(tmp, rng)
        check("capture = HF's c[l,h] mean (image/text/last)", test_capture, tmp)
        check("IDX reader (plain, gzip, labels, splits)", test_idx, tmp, rng)
        check("bad inputs fail cleanly", test_bad_inputs, tmp, rng)
        check("rank -> heads -> eval classify/caption", test_pipeline, tmp, folder)
        check("Flickr30k caption file", test_captions, tmp, folder)
        check("Fashion-MNIST (Debian package)", test_fashion, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"vision pursuit: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
