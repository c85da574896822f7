#!/usr/bin/env python3
"""Writes the hostile inputs under fixtures/hostile/ (stdlib only, deterministic).

Each file is small and built by hand (struct) so that exactly one thing is wrong with it. The
message each must produce is in fixtures/hostile/README.md and asserted by
crates/format/tests/archive_hostile.rs.

    python3 tools/hostile/make_hostile.py            # from the repository root
"""
import io
import os
import pickle
import shutil
import struct
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fixtures", "hostile")
H5_SOURCE = os.path.join(ROOT, "fixtures", "keras3", "conv3d", "model.h5")

METADATA = b'{"keras_version": "3.15.1", "date_saved": "2026-01-01@00:00:00"}'
CONFIG = (b'{"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", '
          b'"layers": []}, "registered_name": null}')
# a stand-in for model.weights.h5: the archive guards never look inside it
WEIGHTS = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4

UNIX = 3 << 8
MODE_FILE = 0o100600 << 16
MODE_LINK = 0o120777 << 16


def entry(name, data, *, method=0, size=None, crc=None, flags=0, made_by=UNIX | 20,
          ext_attr=MODE_FILE, local_name=None, offset=None, compress=False):
    """One member: `data` is what is stored; `size`/`crc` default to the truth about it."""
    if isinstance(name, str):
        name = name.encode()
    raw = data
    if compress:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = c.compress(raw) + c.flush()
        method = 8
    return dict(name=name, data=data, method=method,
                size=len(raw) if size is None else size,
                crc=zlib.crc32(raw) if crc is None else crc,
                flags=flags, made_by=made_by, ext_attr=ext_attr,
                local_name=name if local_name is None else local_name, offset=offset)


def build(entries, *, gap_before_end=b""):
    """A zip with the given members; `offset` overrides where the central directory points."""
    out = bytearray()
    offsets = []
    for e in entries:
        offsets.append(len(out))
        out += local_record(e)
    cd_start = len(out)
    for e, off in zip(entries, offsets):
        off = off if e["offset"] is None else e["offset"]
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, e["made_by"], 20, e["flags"],
                           e["method"], 0, 0x21, e["crc"], len(e["data"]), e["size"],
                           len(e["name"]), 0, 0, 0, 0, e["ext_attr"], off)
        out += e["name"]
    cd_size = len(out) - cd_start
    out += gap_before_end
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), cd_size,
                       cd_start, 0)
    return bytes(out)


def standard(*extra, config=None, weights=None):
    return [entry("metadata.json", METADATA),
            entry("config.json", CONFIG) if config is None else config,
            entry("model.weights.h5", WEIGHTS) if weights is None else weights,
            *extra]


def keras_like():
    """What Keras writes (zipfile, ZIP_STORED, 1980 timestamps), for the truncation cases."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in [("metadata.json", METADATA), ("config.json", CONFIG),
                           ("model.weights.h5", WEIGHTS)]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o600 << 16
            info.create_system = 3
            zf.writestr(info, data)
    return buf.getvalue()


def npz_with_pickle():
    """model.weights.npz as Keras's NpzIOStore writes it: each entry a pickled object array.

    The pickle holds only a harmless dict; strata must refuse it without unpickling anyway."""
    payload = pickle.dumps({"vars": ["kernel", "bias"]}, protocol=4)
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    header = header + " " * (63 - (10 + len(header)) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload
    return build([entry("__root__.npy", npy), entry("layers/dense.npy", npy)])


def cases():
    yield "path_traversal.keras", build(standard(entry("../../evil.sh", b"#!/bin/sh\n")))
    yield "absolute_path.keras", build(standard(entry("/etc/cron.d/evil", b"* * * * * root id\n")))
    yield "backslash_path.keras", build(standard(entry("assets\\..\\..\\evil.dll", b"MZ")))
    yield "drive_letter.keras", build(standard(entry("C:/Windows/evil.dll", b"MZ")))
    yield "duplicate_member.keras", build(standard(entry("config.json", b'{"evil": true}')))
    # 1 MiB of zeros deflated to about 1 KiB, declared as 1 GiB
    bomb = entry("model.weights.h5", bytes(1 << 20), compress=True, size=1 << 30)
    yield "zip_bomb.keras", build(standard(weights=bomb))
    # a member whose stored bytes contain the next member (the overlap behind non-recursive bombs)
    yield "overlapping_members.keras", build_overlap()
    full = keras_like()
    weights_at = full.index(b"model.weights.h5") + len("model.weights.h5")
    yield "truncated.keras", full[: weights_at + len(WEIGHTS) // 2]
    cd_at = full.index(b"PK\x01\x02")
    yield "truncated_directory.keras", full[: cd_at + 50]
    yield "member_out_of_bounds.keras", build(standard(entry("assets/far.bin", b"x" * 64,
                                                            offset=1_000_000)))
    yield "prepended_junk_before_end.keras", build(standard(), gap_before_end=b"JUNKJUNKJUNKJUNK")
    yield "local_header_mismatch.keras", build(standard(
        config=entry("config.json", CONFIG, local_name=b"evil.json")))
    yield "crc_mismatch.keras", build(standard(
        config=entry("config.json", CONFIG, crc=zlib.crc32(CONFIG) ^ 1)))
    yield "encrypted_member.keras", build(standard(config=entry("config.json", CONFIG, flags=1)))
    yield "symlink_member.keras", build(standard(entry("assets/vocab.txt", b"../../../etc/passwd",
                                                       ext_attr=MODE_LINK)))
    yield "non_utf8_name.keras", build(standard(entry(b"assets/\xff\xfe.txt", b"x")))
    yield "unsupported_method.keras", build(standard(
        config=entry("config.json", CONFIG, method=12)))
    # a deflated config whose declared size is smaller than what it inflates to
    yield "lying_deflate.keras", build(standard(
        config=entry("config.json", CONFIG * 8, compress=True, size=len(CONFIG))))
    yield "npz_weights.keras", build([entry("metadata.json", METADATA),
                                      entry("config.json", CONFIG),
                                      entry("model.weights.npz", npz_with_pickle())])
    yield "missing_config.keras", build([entry("metadata.json", METADATA),
                                         entry("model.weights.h5", WEIGHTS)])
    yield "empty_zip.keras", build([])
    yield "empty.keras", b""
    yield "pickle.keras", pickle.dumps({"model": "not really"}, protocol=4)
    oid = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
    yield "lfs_pointer.keras", (
        "version https://git-lfs.github.com/spec/v1\n"
        f"oid sha256:{oid}\nsize 128974848\n").encode()
    with open(H5_SOURCE, "rb") as f:
        yield "hdf5_named.keras", f.read()


def local_record(e):
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, e["flags"], e["method"], 0, 0x21,
                       e["crc"], len(e["data"]), e["size"], len(e["local_name"]), 0) \
        + e["local_name"] + e["data"]


def build_overlap():
    """`assets/outer.bin` stores, as its data, the whole local record of config.json; both
    central entries are valid on their own, but their bytes overlap."""
    inner = entry("config.json", CONFIG)
    outer = entry("assets/outer.bin", local_record(inner))
    inner["offset"] = 30 + len(outer["name"])
    outer["offset"] = 0
    body = local_record(outer)
    rest = [entry("metadata.json", METADATA), entry("model.weights.h5", WEIGHTS)]
    out = bytearray(body)
    for e in rest:
        e["offset"] = len(out)
        out += local_record(e)
    cd_start = len(out)
    members = [outer, inner] + rest
    for e in members:
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, e["made_by"], 20, e["flags"],
                           e["method"], 0, 0x21, e["crc"], len(e["data"]), e["size"],
                           len(e["name"]), 0, 0, 0, 0, e["ext_attr"], e["offset"])
        out += e["name"]
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                       len(out) - cd_start, cd_start, 0)
    return bytes(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in cases():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
