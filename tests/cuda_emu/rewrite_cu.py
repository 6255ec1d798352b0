#!/usr/bin/env python3
"""rewrite_cu.py SRC.cu OUT.cc: a copy of a CUDA source that g++ can compile against the cuda_emu
device model. Only two constructs change, in place and on the same lines (a #line directive keeps
diagnostics and sanitizer reports on the original file and line):

  kernel<<<grid, block[, smem[, stream]]>>>(args)
      -> ::hp_emu::launch("kernel", ::hp_emu::cfg(grid, block, ...), kernel, args)
  __shared__ [__align__(n)] T a[N], b;      (static shared memory)
      -> T (&a)[N] = ::hp_emu::shared_array<T[N]>(id, "a"); T &b = ::hp_emu::shared_var<T>(id, "b");
  extern __shared__ T a[];                  (dynamic shared memory)
      -> T *a = static_cast<T *>(::hp_emu::shared_dynamic());

Everything else is left byte for byte as it is. Exits non-zero on a construct it cannot parse."""
import re
import sys


def fail(msg):
    sys.exit(f"rewrite_cu.py: {msg}")


def split_top(s, sep=","):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def rewrite_launches(src):
    out, pos = [], 0
    kname = re.compile(r"([A-Za-z_]\w*(?:\s*<[^<>;(){}]*>)?)\s*$")
    while True:
        i = src.find("<<<", pos)
        if i < 0:
            out.append(src[pos:])
            return "".join(out)
        m = kname.search(src[pos:i])
        if not m:
            fail(f"no kernel name before <<< at offset {i}")
        kstart = pos + m.start(1)
        j = src.find(">>>", i)
        if j < 0:
            fail(f"unterminated <<< at offset {i}")
        cfg = src[i + 3:j]
        k = j + 3
        while src[k].isspace():
            k += 1
        if src[k] != "(":
            fail(f"no argument list after >>> at offset {j}")
        depth, e = 0, k
        while True:
            if src[e] == "(":
                depth += 1
            elif src[e] == ")":
                depth -= 1
                if depth == 0:
                    break
            e += 1
        args = src[k + 1:e]
        kernel = m.group(1)
        name = re.sub(r"\s+", "", kernel)
        call = f'::hp_emu::launch("{name}", ::hp_emu::cfg({cfg}), {kernel}'
        call += (", " + args if args.strip() else "") + ")"
        out.append(src[pos:kstart])
        out.append(call)
        pos = e + 1


def rewrite_shared(src):
    counter = [0]

    def dyn(m):
        t, name = m.group(1).strip(), m.group(2)
        return f"{t} *{name} = static_cast<{t} *>(::hp_emu::shared_dynamic());"

    src = re.sub(r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([\w:\s]+?)\s+(\w+)\s*\[\s*\]\s*;", dyn, src)

    def stat(m):
        align, t, decls = m.group(1), m.group(2).strip(), m.group(3)
        if align and int(align) > 16:
            fail(f"__align__({align}) above 16 bytes is not supported")
        res = []
        for d in split_top(decls):
            d = d.strip()
            dm = re.fullmatch(r"(\w+)\s*((?:\[[^\]]+\])*)", d)
            if not dm:
                fail(f"cannot parse the __shared__ declarator '{d}'")
            name, dims = dm.group(1), dm.group(2)
            sid = counter[0]
            counter[0] += 1
            if dims:
                res.append(f'{t} (&{name}){dims} = ::hp_emu::shared_array<{t}{dims}>({sid}, "{name}");')
            else:
                res.append(f'{t} &{name} = ::hp_emu::shared_var<{t}>({sid}, "{name}");')
        return " ".join(res)

    src = re.sub(r"__shared__\s+(?:__align__\((\d+)\)\s+)?([\w:]+(?:\s+[\w:]+)*?)\s+((?:\w+\s*(?:\[[^\]]+\])*\s*,\s*)*\w+\s*(?:\[[^\]]+\])*)\s*;",
                 stat, src)
    if "__shared__" in src:
        fail("a __shared__ declaration was left unrewritten")
    return src


def main():
    if len(sys.argv) != 3:
        fail("usage: rewrite_cu.py SRC.cu OUT.cc")
    path, out = sys.argv[1], sys.argv[2]
    src = open(path, encoding="utf-8").read()
    res = rewrite_shared(rewrite_launches(src))
    if res.count("\n") != src.count("\n"):
        fail("the rewrite changed the number of lines")
    with open(out, "w", encoding="utf-8") as f:
        f.write(f'#line 1 "{path}"\n' + res)


main()
