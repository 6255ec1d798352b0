#!/usr/bin/env python3
"""test_somp.py: `headpursuit somp` against independent references on fresh random problems.

(a) one sample: scikit-learn's OrthogonalMatchingPursuit (OMP is SOMP with N = 1);
(b) many samples: a from-scratch numpy SOMP that re-solves least squares on the support every
    step (the literal Algorithm 1 of PAPER.md §3), with and without --center, one and many heads;
(c) EVR never decreases; (d) k past the rank, duplicate / scaled / zero atoms: early stop, no
    NaN; (e) bad inputs fail with a message naming the file.
Inputs are float32 .npy files; references read them back as float64, so both sides see exactly
the same numbers and differ only by double rounding. Binary: $HP_BIN (default ./headpursuit).
Seed: $HP_SEED, else fresh each run (printed). Exit 0 pass, 1 fail.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

# Tolerances (double arithmetic on both sides; problems are well conditioned Gaussians):
TOL_COEF = 1e-6  # relative ‖W − W_ref‖/‖W_ref‖: QR-updated vs from-scratch least squares
TOL_EVR = 1e-9  # absolute: EVR is a ratio of sums of squares, computed two ways
TOL_RECON = 1e-9  # relative residual when k reaches the rank of a full-rank dictionary

BIN = os.environ.get("HP_BIN", "./headpursuit")
SEED = int(os.environ["HP_SEED"]) if os.environ.get("HP_SEED") else int.from_bytes(os.urandom(4), "little")
RNG = np.random.default_rng(SEED)
FAILURES = []
CHECKS = 0


def check(ok, what):
    global CHECKS
    CHECKS += 1
    if not ok:
        FAILURES.append(what)
        print("FAIL:", what)
    return ok


def run_cli(args):
    return subprocess.run([BIN, "somp", *args], capture_output=True, text=True, timeout=600)


class Problem:
    """Writes H and Dict as float32 .npy in tmp and runs the binary on them."""

    def __init__(self, tmp, name, H, Dict):
        self.H = np.asarray(H, np.float32)
        self.Dict = np.asarray(Dict, np.float32)
        self.hpath = os.path.join(tmp, name + "_H.npy")
        self.dpath = os.path.join(tmp, name + "_D.npy")
        self.opath = os.path.join(tmp, name + "_out.json")
        np.save(self.hpath, self.H)
        np.save(self.dpath, self.Dict)

    def run(self, k, center=False, normalize=False):
        args = ["--signals", self.hpath, "--dict", self.dpath, "-k", str(k), "--out", self.opath]
        if center:
            args.append("--center")
        if normalize:
            args.append("--normalize-atoms")
        p = run_cli(args)
        if p.returncode != 0:
            check(False, f"somp {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
            return None, p
        with open(self.opath) as f:
            return json.load(f), p


def ref_somp(H, Dict, k, center=False):
    """Algorithm 1 literally: P = D R^T, ℓ1 argmax over unselected atoms (np.argmax: lowest index
    on ties), least squares re-solved from scratch on the support, R = H − W D_S."""
    H = np.asarray(H, np.float64)
    Dict = np.asarray(Dict, np.float64)
    if center:
        H = H - H.mean(axis=0)
    hh = float((H * H).sum())
    S, evr, W, R = [], [], np.zeros((H.shape[0], 0)), H.copy()
    for _ in range(k):
        score = np.abs(Dict @ R.T).sum(axis=1)
        score[S] = -np.inf
        S.append(int(np.argmax(score)))
        DS = Dict[S]
        W = np.linalg.lstsq(DS.T, H.T, rcond=None)[0].T
        R = H - W @ DS
        evr.append(1.0 - float((R * R).sum()) / hh)
    return S, W, np.array(evr)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return np.inf, None
    d = np.abs(a - b)
    if not np.all(np.isfinite(a)):
        return np.inf, None  # NaN never passes
    nb = np.linalg.norm(b)
    idx = np.unravel_index(int(np.argmax(d)), d.shape) if d.size else None
    return (np.linalg.norm(a - b) / nb if nb > 0 else np.linalg.norm(a - b)), idx


def head_arrays(h):
    sup = list(h["support"])
    evr = np.array(h["evr"], np.float64)
    coef = np.array(h["coef"], np.float64)
    return sup, evr, coef


def check_head_basic(name, h, N):
    sup, evr, coef = head_arrays(h)
    k = len(sup)
    check(len(evr) == k, f"{name}: {len(evr)} EVR values for {k} atoms")
    check(coef.shape == (N, k) or (k == 0 and len(h["coef"]) == N), f"{name}: coef shape {coef.shape}, expected ({N}, {k})")
    check(np.all(np.isfinite(evr)) and np.all(np.isfinite(coef)), f"{name}: NaN/Inf in output")
    check(len(set(sup)) == k, f"{name}: an atom selected twice: {sup}")
    if k:  # (c) EVR non-decreasing and within [0, 1]
        check(np.all(np.diff(evr) >= 0), f"{name}: EVR decreases: {evr.tolist()}")
        check(evr[0] >= 0 and evr[-1] <= 1 + 1e-12, f"{name}: EVR outside [0, 1]: {evr.tolist()}")


def compare_to_ref(name, h, H, Dict, k, center):
    S, W, evr = ref_somp(H, Dict, k, center)
    sup, evr_b, coef = head_arrays(h)
    if not check(sup == S, f"{name}: support {sup} != reference {S}"):
        return
    e, idx = rel_err(coef, W)
    check(e <= TOL_COEF, f"{name}: coef rel err {e:.3g} > {TOL_COEF} (max at {idx})")
    de = np.max(np.abs(evr_b - evr)) if len(evr) else 0.0
    check(de <= TOL_EVR, f"{name}: EVR max abs err {de:.3g} > {TOL_EVR}")


def gaussian(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---- (a) N = 1 against scikit-learn -----------------------------------------------------------
def test_sklearn(tmp):
    from sklearn.linear_model import OrthogonalMatchingPursuit, orthogonal_mp

    n = 0
    for D, V in [(16, 50), (32, 300), (64, 300), (8, 10)]:
        for k in sorted({1, 3, min(D, V) // 2, min(D, V) - 1}):
            if k < 1:
                continue
            H, Dict = gaussian(1, D), gaussian(V, D)
            pb = Problem(tmp, f"skl{n}", H, Dict)
            n += 1
            out, _ = pb.run(k)
            if out is None:
                continue
            name = f"sklearn D={D} V={V} k={k}"
            h = out["heads"][0]
            check_head_basic(name, h, 1)
            sup, evr, coef = head_arrays(h)
            X, y = pb.Dict.astype(np.float64).T, pb.H[0].astype(np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                m = OrthogonalMatchingPursuit(n_nonzero_coefs=k, fit_intercept=False).fit(X, y)
            # sklearn 1.2: `normalize` is deprecated and off; with fit_intercept=False nothing is
            # rescaled, so its argmax |X^T r| is exactly the ℓ1 rule for one sample.
            check(getattr(m, "normalize", "deprecated") in (False, "deprecated"), f"{name}: sklearn normalize is on")
            nz = set(np.flatnonzero(m.coef_).tolist())
            if not check(set(sup) == nz, f"{name}: support {sorted(sup)} != sklearn {sorted(nz)}"):
                continue
            path = orthogonal_mp(X, y, n_nonzero_coefs=k, return_path=True)
            path = path.reshape(V, -1)
            order = []
            for t in range(path.shape[1]):
                order += [j for j in np.flatnonzero(path[:, t]) if j not in order]
            check(order == sup, f"{name}: selection order {sup} != sklearn path {order}")
            e, idx = rel_err(coef[0], m.coef_[sup])
            check(e <= TOL_COEF, f"{name}: coef rel err vs sklearn {e:.3g} (max at {idx})")
            r = y - X[:, sup] @ m.coef_[sup]
            check(abs(evr[-1] - (1 - r @ r / (y @ y))) <= TOL_EVR, f"{name}: final EVR vs sklearn")
    print(f"(a) sklearn OMP: {n} problems")


# ---- (b) many samples against the numpy reference --------------------------------------------
def test_reference(tmp):
    n = 0
    for N in (1, 3, 20):
        for D in (8, 32, 64):
            for V in (10, 50, 300):
                kmax = min(D, V)
                H, Dict = gaussian(N, D), gaussian(V, D)
                pb = Problem(tmp, f"ref{N}_{D}_{V}", H, Dict)
                for k in sorted({kmax, int(RNG.integers(1, kmax + 1))}):
                    for center in (False, True):
                        name = f"ref N={N} D={D} V={V} k={k}{' center' if center else ''}"
                        out, _ = pb.run(k, center=center)
                        n += 1
                        if out is None:
                            continue
                        h = out["heads"][0]
                        check(out["k"] == k and len(out["heads"]) == 1, f"{name}: bad JSON header")
                        check_head_basic(name, h, N)
                        if center and N == 1:  # a centred single sample is zero: nothing to fit
                            check(h["support"] == [] and h["h_norm2"] == 0, f"{name}: expected k = 0")
                            continue
                        compare_to_ref(name, h, pb.H, pb.Dict, k, center)
    print(f"(b) numpy reference: {n} runs")


def test_batch(tmp):
    """[heads, N, D] signals: every head equals the reference and the single-head run."""
    nh, N, D, V, k = 7, 12, 32, 200, 10
    H, Dict = gaussian(nh, N, D), gaussian(V, D)
    H[4] = 0  # a silent head: nothing to explain, k = 0, no NaN
    # One OpenMP thread once ran only head 0 of a batch: run the batch both ways.
    for threads in (None, "1"):
        if threads:
            os.environ["OMP_NUM_THREADS"] = threads
        else:
            os.environ.pop("OMP_NUM_THREADS", None)
        for center in (False, True):
            pb = Problem(tmp, "batch", H, Dict)
            out, p = pb.run(k, center=center)
            if out is None:
                continue
            check(len(out["heads"]) == nh, f"batch: {len(out['heads'])} heads, expected {nh}")
            check("heads" in p.stderr and f"{nh}/{nh}" in p.stderr, f"batch: no progress line on stderr: {p.stderr!r}")
            for i, h in enumerate(out["heads"]):
                name = f"batch head {i}{' center' if center else ''}{' 1 thread' if threads else ''}"
                check_head_basic(name, h, N)
                if i == 4:
                    check(h["support"] == [] and h["h_norm2"] == 0 and len(h["coef"]) == N, f"{name}: zero head")
                    continue
                compare_to_ref(name, h, H[i], Dict, k, center)
                single = Problem(tmp, "single", H[i], Dict)
                o1, _ = single.run(k, center=center)
                if o1 is not None:
                    s1 = o1["heads"][0]
                    check(s1["support"] == h["support"], f"{name}: batch support differs from single-head run")
                    e, _ = rel_err(h["coef"], s1["coef"])
                    check(e <= 1e-12, f"{name}: batch coef differs from single-head run by {e:.3g}")
    os.environ.pop("OMP_NUM_THREADS", None)
    print(f"(b) batch of {nh} heads")


def test_normalize(tmp):
    N, D, V, k = 5, 24, 80, 12
    H = gaussian(N, D)
    Dict = gaussian(V, D) * RNG.uniform(0.1, 10, size=(V, 1)).astype(np.float32)
    Dict[7] = 0  # a zero atom stays zero and is never chosen
    pb = Problem(tmp, "norm", H, Dict)
    out, _ = pb.run(k, normalize=True)
    if out is None:
        return
    d64 = pb.Dict.astype(np.float64)
    nrm = np.sqrt((d64 * d64).sum(axis=1))
    inv = np.where(nrm > 0, 1.0 / np.where(nrm > 0, nrm, 1), 0.0)
    Dn = (d64 * inv[:, None]).astype(np.float32)  # as the binary does: scale in double, store float
    h = out["heads"][0]
    check_head_basic("normalize", h, N)
    check(7 not in h["support"], "normalize: zero atom selected")
    compare_to_ref("normalize", h, pb.H, Dn, k, False)
    print("(b) --normalize-atoms")


# ---- (d) rank limits and dependent atoms ------------------------------------------------------
def test_rank(tmp):
    # k past the rank: D = 8 so at most 8 independent atoms; the residual vanishes at step 8.
    N, D, V, k = 4, 8, 50, 12
    pb = Problem(tmp, "rank", gaussian(N, D), gaussian(V, D))
    out, _ = pb.run(k)
    if out is not None:
        h = out["heads"][0]
        check_head_basic("k>rank", h, N)
        sup, evr, coef = head_arrays(h)
        check(len(sup) == D, f"k>rank: {len(sup)} atoms, expected early stop at {D}")
        check(len(evr) and evr[-1] >= 1 - TOL_RECON, f"k>rank: final EVR {evr[-1] if len(evr) else None}")
        compare_to_ref("k>rank", h, pb.H, pb.Dict, len(sup), False)
        R = pb.H.astype(np.float64) - coef @ pb.Dict.astype(np.float64)[sup]
        check(np.linalg.norm(R) <= TOL_RECON * np.linalg.norm(pb.H), "k>rank: reconstruction not exact")

    # Duplicates, a scaled copy and a zero atom: 10 distinct directions in D = 32, so the pursuit
    # must stop after 10 atoms (the rest lie in their span) with the residual not zero.
    N, D, k = 5, 32, 15
    base = gaussian(10, D)
    Dict = np.concatenate([base, base[[3, 0, 7]], 2.5 * base[[5]], np.zeros((1, D), np.float32), base[[9, 1]]])
    perm = RNG.permutation(len(Dict))
    Dict = Dict[perm]
    canon = {}  # atom index -> lowest index of an atom with the same direction
    unit = Dict / np.maximum(np.linalg.norm(Dict, axis=1, keepdims=True), 1e-30)
    for j in range(len(Dict)):
        same = [i for i in range(j + 1) if np.allclose(unit[i], unit[j], atol=1e-6) and np.any(Dict[j])]
        canon[j] = same[0] if same else j
    zero = [j for j in range(len(Dict)) if not np.any(Dict[j])]
    pb = Problem(tmp, "dup", gaussian(N, D), Dict)
    for center in (False, True):
        name = f"duplicates{' center' if center else ''}"
        out, _ = pb.run(k, center=center)
        if out is None:
            continue
        h = out["heads"][0]
        check_head_basic(name, h, N)
        sup, evr, coef = head_arrays(h)
        check(len(sup) == 10, f"{name}: {len(sup)} atoms, expected a stop at rank 10")
        check(len({canon[j] for j in sup}) == len(sup), f"{name}: two atoms with one direction: {sup}")
        check(not set(sup) & set(zero), f"{name}: zero atom selected")
        check(len(evr) and evr[-1] < 1 - 1e-3, f"{name}: residual should not vanish")
        # Same path as the reference up to which copy of a direction is taken (copies can tie).
        S, W, evr_ref = ref_somp(pb.H, pb.Dict, len(sup), center)
        check([canon[j] for j in sup] == [canon[j] for j in S], f"{name}: support {sup} != reference {S} (up to copies)")
        check(len(evr) == len(evr_ref) and np.max(np.abs(evr - evr_ref)) <= TOL_EVR, f"{name}: EVR vs reference")
    print("(d) rank limit and dependent atoms")


# ---- (e) bad inputs ---------------------------------------------------------------------------
def test_bad_inputs(tmp):
    good_h, good_d = os.path.join(tmp, "good_H.npy"), os.path.join(tmp, "good_D.npy")
    np.save(good_h, gaussian(4, 16))
    np.save(good_d, gaussian(30, 16))
    out = os.path.join(tmp, "bad_out.json")

    def expect_fail(name, hpath, dpath, k="3", needle=None):
        if os.path.exists(out):
            os.remove(out)
        p = run_cli(["--signals", hpath, "--dict", dpath, "-k", k, "--out", out])
        check(p.returncode != 0, f"bad input '{name}': exit 0")
        if needle:
            check(needle in p.stderr, f"bad input '{name}': message does not name {needle}: {p.stderr.strip()!r}")
        check(not os.path.exists(out), f"bad input '{name}': output written")
        check("Traceback" not in p.stderr and p.returncode < 128, f"bad input '{name}': crashed ({p.returncode})")

    mism = os.path.join(tmp, "mismatch_D.npy")
    np.save(mism, gaussian(30, 17))
    expect_fail("D mismatch", good_h, mism, needle=mism)
    oned = os.path.join(tmp, "oned_H.npy")
    np.save(oned, gaussian(16))
    expect_fail("1-D signals", oned, good_d, needle=oned)
    fourd = os.path.join(tmp, "fourd_H.npy")
    np.save(fourd, gaussian(2, 2, 4, 16))
    expect_fail("4-D signals", fourd, good_d, needle=fourd)
    raw = open(good_h, "rb").read()
    trunc = os.path.join(tmp, "trunc_H.npy")
    open(trunc, "wb").write(raw[:-3])
    expect_fail("truncated data", trunc, good_d, needle=trunc)
    badmagic = os.path.join(tmp, "magic_D.npy")
    open(badmagic, "wb").write(b"\x93NUMPZ" + open(good_d, "rb").read()[6:])
    expect_fail("bad magic", good_h, badmagic, needle=badmagic)
    hdr = os.path.join(tmp, "hdr_D.npy")
    open(hdr, "wb").write(open(good_d, "rb").read()[:40])
    expect_fail("truncated header", good_h, hdr, needle=hdr)
    ints = os.path.join(tmp, "ints_D.npy")
    np.save(ints, np.ones((30, 16), np.int64))
    expect_fail("integer dict", good_h, ints, needle=ints)
    nan = os.path.join(tmp, "nan_D.npy")
    d = gaussian(30, 16)
    d[4, 5] = np.nan
    np.save(nan, d)
    expect_fail("NaN in dict", good_h, nan, needle=nan)
    expect_fail("missing file", os.path.join(tmp, "nope.npy"), good_d, needle="nope.npy")
    expect_fail("k = 0", good_h, good_d, k="0", needle="-k")
    expect_fail("k = -2", good_h, good_d, k="-2", needle="-k")
    expect_fail("k = 3x", good_h, good_d, k="3x", needle="-k")
    p = subprocess.run([BIN, "somp", "--help"], capture_output=True, text=True)
    check(p.returncode == 0 and "--signals" in p.stdout, "--help")
    print("(e) bad inputs")


def main():
    print(f"test_somp: seed {SEED} (HP_SEED={SEED} to repeat), binary {BIN}")
    if not os.path.exists(BIN):
        print(f"FAIL: binary {BIN} not found (set HP_BIN)")
        return 1
    with tempfile.TemporaryDirectory(prefix="hp_test_somp_") as tmp:
        for t in (test_sklearn, test_reference, test_batch, test_normalize, test_rank, test_bad_inputs):
            t(tmp)
    print(f"test_somp: {CHECKS} checks, {len(FAILURES)} failed (seed {SEED})")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
