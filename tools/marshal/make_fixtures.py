# Writes marshal fixtures for strata-marshal with the running CPython:
#   <outdir>/<major>.<minor>/<name>.bin   marshal.dumps(code) of a few lambdas and functions
#   <outdir>/<major>.<minor>/<name>.json  what this interpreter's own marshal/dis say about it
#
#   python make_fixtures.py fixtures/marshal
#
# Runs on CPython 2.7 and 3.x (no f-strings). Nothing here is typed by hand for the tests: the
# Rust tests compare strata-marshal's decoder and disassembler against these JSON files.
# tools/marshal/gen_all.sh runs it under every pyenv interpreter and under 3.14 in Pyodide.
import dis
import json
import marshal
import os
import sys

PY2 = sys.version_info[0] == 2
VER = sys.version_info[:2]
FILENAME = "fixture.py"

# name -> (source, how to get the function: ("name", var) or ("call", var, arg))
CASES = [
    ("affine", "f = lambda x: x * 2.0 + 1.0\n", ("name", "f")),
    ("closure", "def make(k):\n    return lambda x: x * k + 1.5\n", ("call", "make", 3.0)),
    ("os_system", "import os\nf = lambda x: os.system('echo ' + str(x))\n", ("name", "f")),
    ("defaults", "f = lambda x, scale=2.0, shift=(1, 'a'): x * scale + shift[0]\n", ("name", "f")),
    (
        "nested",
        "def outer(x):\n    def inner(y):\n        return y * 3 - x\n    return inner(x) + len([x])\n",
        ("name", "outer"),
    ),
    ("int92", "f = lambda x: x * 92\n", ("name", "f")),
    ("backslash", "f = lambda s: s.replace('\\\\n', ' ')\n", ("name", "f")),
    ("bigint", "f = lambda x: x + 123456789012345678901234567890 - (-98765432109876543210)\n", ("name", "f")),
    ("len92", "f = lambda x: x + '" + "a" * 92 + "'\n", ("name", "f")),
    ("consts", "f = lambda x: (x in {1, 2, 3}, x[1:3], x[-1], 1e300, -0.5, 2j, None, True, ...)\n", ("name", "f")),
]
PY3_CASES = [
    ("kwonly", "f = lambda x, *args, y=1.0, **kw: x + y + len(args) + len(kw)\n", ("name", "f")),
    ("comprehension", "f = lambda xs: [v * 2 for v in xs if v > 0]\n", ("name", "f")),
]


def text(v):
    if isinstance(v, bytes) and not PY2:
        return v.decode("latin-1")
    if PY2 and isinstance(v, unicode):  # noqa: F821
        return v.encode("utf-8")
    return v


def instructions_py2(code):
    # Python 2.7 has no dis.get_instructions: capture and split dis.dis's own text output.
    import re
    import StringIO  # noqa

    buf = StringIO.StringIO()
    old = sys.stdout
    sys.stdout = buf
    try:
        dis.dis(code)
    finally:
        sys.stdout = old
    out = []
    pat = re.compile(r"^\s*(?:(\d+)\s+)?(-->)?\s*(>>)?\s*(\d+) ([A-Z_0-9+]+)\s*(\d+)?\s*(\((.*)\))?\s*$")
    for line in buf.getvalue().splitlines():
        if not line.strip():
            continue
        m = pat.match(line)
        if not m:
            raise SystemExit("unparsed dis line: %r" % line)
        arg = m.group(6)
        out.append(
            {
                "offset": int(m.group(4)),
                "opname": m.group(5),
                "arg": int(arg) if arg is not None else None,
                "argrepr": m.group(8) if m.group(8) is not None else "",
            }
        )
    return out


def instructions(code):
    if PY2:
        return instructions_py2(code)
    out = []
    for ins in dis.get_instructions(code):
        out.append({"offset": ins.offset, "opname": ins.opname, "arg": ins.arg, "argrepr": ins.argrepr})
    return out


def describe(code):
    d = {
        "co_name": text(code.co_name),
        "co_filename": text(code.co_filename),
        "co_firstlineno": code.co_firstlineno,
        "co_argcount": code.co_argcount,
        "co_posonlyargcount": getattr(code, "co_posonlyargcount", 0),
        "co_kwonlyargcount": getattr(code, "co_kwonlyargcount", 0),
        "co_nlocals": code.co_nlocals,
        "co_stacksize": code.co_stacksize,
        "co_flags": code.co_flags,
        "co_varnames": [text(v) for v in code.co_varnames],
        "co_freevars": [text(v) for v in code.co_freevars],
        "co_cellvars": [text(v) for v in code.co_cellvars],
        "co_names": [text(v) for v in code.co_names],
        "co_code_hex": "".join("%02x" % b for b in bytearray(code.co_code)),
        "instructions": instructions(code),
    }
    if hasattr(code, "co_qualname"):
        d["co_qualname"] = code.co_qualname
    consts = []
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            consts.append({"code": describe(c)})
        else:
            consts.append({"repr": text(repr(c)), "type": type(c).__name__})
    d["co_consts"] = consts
    return d


def main():
    outdir = os.path.join(sys.argv[1], "%d.%d" % VER)
    if not os.path.isdir(outdir):
        os.makedirs(outdir)
    cases = CASES + ([] if PY2 else PY3_CASES)
    for name, src, how in cases:
        if PY2 and name == "consts":
            src = src.replace(", ...)", ")")
        ns = {}
        exec(compile(src, FILENAME, "exec"), ns)
        fn = ns[how[1]]
        if how[0] == "call":
            fn = fn(how[2])
        code = fn.__code__ if not PY2 else fn.func_code
        blob = marshal.dumps(code)
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(blob)
        # What Keras's func_dump writes on Windows: every 0x5C byte replaced by 0x2F (keras-facts 3.1).
        win = blob.replace(b"\\", b"/")
        if win != blob:
            with open(os.path.join(outdir, name + ".win.bin"), "wb") as f:
                f.write(win)
        doc = {
            "python": sys.version.split()[0],
            "marshal_version": marshal.version,
            "source": src,
            "blob_len": len(blob),
            "windows_replaced": blob.count(b"\\"),
            "code": describe(code),
        }
        with open(os.path.join(outdir, name + ".json"), "w") as f:
            f.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    sys.stdout.write("wrote %d fixtures to %s\n" % (len(cases), outdir))


if __name__ == "__main__":
    main()
