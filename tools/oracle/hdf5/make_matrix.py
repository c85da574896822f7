#!/usr/bin/env python3
"""Write the strata-hdf5 conformance matrix: fixtures/hdf5/*.h5 and, for each
readable file, fixtures/hdf5/<name>.json (the h5py dump of h5dump_json.py).

Usage: make_matrix.py [OUT_DIR]   (default: fixtures/hdf5 next to tools/)

Needs h5py and numpy. The files mirror what Keras/h5py write (keras-facts.md
section 2) plus what other tools write (libver='latest', chunked+gzip+shuffle),
and a few hostile or unsupported files that the Rust tests expect to be refused.
Deterministic: track_times=False everywhere, fixed values.
"""
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h5dump_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "fixtures", "hdf5")
OUT = os.path.abspath(OUT)

DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64", "bool"]


def values(dtype, shape, seed):
    n = int(np.prod(shape)) if shape else 1
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        v = rng.integers(0, 2, n).astype(bool)
    elif dtype.startswith("float"):
        v = rng.standard_normal(n).astype(dtype)
        if n > 3:
            v[:3] = [np.inf, -0.0, np.nan]
    else:
        info = np.iinfo(dtype)
        v = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
        if n > 2:
            v[:2] = [info.min, info.max]
    return v.reshape(shape) if shape else v[0]


def fixed_attr(obj, name, items, pad, utf8=False, size=None):
    """A fixed-length string attribute with explicit padding and charset (1-D, or scalar if items is bytes)."""
    scalar = isinstance(items, bytes)
    arr_items = [items] if scalar else items
    size = size or max(1, max(len(x) for x in arr_items))
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(size)
    tid.set_strpad(pad)
    if utf8:
        tid.set_cset(h5py.h5t.CSET_UTF8)
    space = h5py.h5s.create(h5py.h5s.SCALAR) if scalar else h5py.h5s.create_simple((len(arr_items),))
    aid = h5py.h5a.create(obj.id, name.encode(), tid, space)
    data = np.array(arr_items, dtype=f"S{size}")
    aid.write(data.reshape(()) if scalar else data, mtype=tid)


def bf16_bytes(n, seed):
    f = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    return (f.view(np.uint32) >> 16).astype("<u2").tobytes()


def bf16_dataset(group, name, shape, seed):
    n = int(np.prod(shape)) if shape else 1
    raw = np.frombuffer(bf16_bytes(n, seed), dtype="V2")
    ds = group.create_dataset(name, data=raw.reshape(shape) if shape else raw[0], track_times=False)
    ds.attrs["dtype"] = "bfloat16"


def keras_like(path, libver):
    """A legacy-.h5-shaped file plus every dtype, scalars, string encodings, wide and deep groups."""
    with h5py.File(path, "w", libver=libver, track_order=False) as f:
        f.attrs["keras_version"] = "3.15.1"
        f.attrs["backend"] = "jax"
        f.attrs["model_config"] = '{"class_name": "Sequential", "config": {"name": "caf\u00e9"}}'.encode("utf8")
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [b"dense", b"dropout"]
        mw.attrs["backend"] = b"jax"
        d = mw.create_group("dense")
        d.attrs["weight_names"] = [b"dense/kernel", b"dense/bias"]
        d.create_dataset("dense/kernel", data=values("float32", (3, 4), 1), track_times=False)
        d.create_dataset("dense/bias", data=values("float32", (4,), 2), track_times=False)
        dr = mw.create_group("dropout")
        dr.attrs["weight_names"] = []  # empty list -> empty float64 array
        # Split attribute as Keras writes past 64 KB: fixed-length NULLPAD chunks.
        names = np.array([f"layer_{i}".encode() for i in range(10)])
        for i, chunk in enumerate(np.array_split(names, 3)):
            mw.attrs[f"split_names{i}"] = chunk
        # Every string encoding.
        s = f.create_group("strings")
        s.attrs["vlen_utf8"] = "h\u00e9llo \u2603"
        s.attrs["vlen_ascii"] = b"plain bytes"
        s.attrs["vlen_ascii_array"] = [b"a", b"", b"ccc"]
        s.attrs["vlen_utf8_array"] = ["x", "\u00fc\u00f1\u00ee", ""]
        s.attrs["fixed_nullpad_array"] = np.array([b"ab", b"abcd", b""])
        fixed_attr(s, "fixed_nullterm_array", [b"ab", b"abcd"], h5py.h5t.STR_NULLTERM, size=6)
        fixed_attr(s, "fixed_nullterm_scalar", b"term", h5py.h5t.STR_NULLTERM, size=8)
        fixed_attr(s, "fixed_utf8_nullpad", ["\u00e9t\u00e9".encode(), b"x"], h5py.h5t.STR_NULLPAD, utf8=True)
        fixed_attr(s, "fixed_spacepad", [b"ab  ", b"c   "], h5py.h5t.STR_SPACEPAD)
        s.attrs["empty_f64"] = np.zeros((0,), dtype="f8")
        s.attrs["f64"] = 0.1
        s.attrs["f32_array"] = np.array([1.5, -2.25, np.inf], dtype="f4")
        s.attrs["f16"] = np.float16(0.333)
        s.attrs["i64"] = -(2 ** 62)
        s.attrs["i8_array"] = np.array([-128, 127], dtype="i1")
        s.attrs["u64"] = np.uint64(2 ** 64 - 1)
        s.attrs["bool"] = True
        s.attrs["matrix"] = np.arange(6, dtype="i4").reshape(2, 3)
        # Every dataset dtype, 2-D and scalar, plus bfloat16.
        t = f.create_group("dtypes")
        for i, dt in enumerate(DTYPES):
            t.create_dataset(dt, data=values(dt, (5, 3), 10 + i), track_times=False)
            t.create_dataset(dt + "_scalar", data=values(dt, (), 30 + i), track_times=False)
        bf16_dataset(t, "bfloat16", (4, 2), 50)
        bf16_dataset(t, "bfloat16_scalar", (), 51)
        t.create_dataset("empty", data=np.zeros((0, 3), dtype="f4"), track_times=False)
        t.create_dataset("big_endian_f4", data=values("float32", (4,), 60).astype(">f4"), track_times=False)
        t.create_dataset("big_endian_i8", data=values("int64", (4,), 61).astype(">i8"), track_times=False)
        t.create_dataset("unallocated", shape=(4,), dtype="f4", track_times=False)
        # Wide (multi-level v1 B-tree in old-style groups; dense links in new-style) and deep.
        w = f.create_group("wide")
        for i in range(300):
            w.create_dataset(f"m{i:03d}", data=np.int32(i), track_times=False)
        g = f
        for depth in range(6):
            g = g.create_group(f"level{depth}")
            g.attrs["depth"] = depth
        g.create_dataset("leaf", data=np.arange(3, dtype="i8"), track_times=False)
        # Many attributes on one object (dense attribute storage under libver='latest').
        many = f.create_group("many_attrs")
        for i in range(20):
            many.attrs[f"a{i:02d}"] = i


def chunked(path):
    with h5py.File(path, "w", libver="earliest") as f:
        kw = dict(track_times=False, compression="gzip", shuffle=True)
        f.create_dataset("f32", data=values("float32", (37, 5), 70), chunks=(8, 5), **kw)
        f.create_dataset("i64", data=values("int64", (100,), 71), chunks=(16,), **kw)
        f.create_dataset("f16", data=values("float16", (9, 9), 72), chunks=(4, 4), **kw)
        f.create_dataset("gzip_only", data=values("float64", (50,), 73), chunks=(10,), compression="gzip", track_times=False)
        f.create_dataset("plain_chunks", data=values("int32", (20,), 74), chunks=(7,), track_times=False)
        f.create_dataset("lzf", data=values("float32", (40,), 75), chunks=(10,), compression="lzf", track_times=False)
        f.create_dataset("fletcher32", data=values("int16", (30,), 76), chunks=(10,), fletcher32=True, track_times=False)
        f.create_dataset("sparse", shape=(64,), dtype="f4", chunks=(8,), track_times=False)
        f["sparse"][8:16] = np.arange(8, dtype="f4")


def links(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("target", data=np.arange(4, dtype="f4"), track_times=False)
        f["soft"] = h5py.SoftLink("/target")
        f["dangling"] = h5py.SoftLink("/nowhere")
        f["external"] = h5py.ExternalLink("other.h5", "/weights")
        g = f.create_group("g")
        g["soft_in_group"] = h5py.SoftLink("/g")
        f["alias"] = f["target"]  # second hard link
        f["loop"] = f["g"]  # hard link to a group visited elsewhere
        f.create_dataset("external_storage", shape=(4,), dtype="f4", external=[("raw.bin", 0, 16)], track_times=False)
        f["named_type"] = np.dtype("f4")
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource(".", "target", shape=(4,))
        f.create_virtual_dataset("virtual", layout)


def compact_and_userblock(path):
    with h5py.File(path, "w", userblock_size=512) as f:
        tid = h5py.h5t.py_create(np.dtype("<f8"))
        space = h5py.h5s.create_simple((3,))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        dsid = h5py.h5d.create(f.id, b"compact", tid, space, dcpl=dcpl)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([1.0, 2.5, -3.0]))
        f.create_dataset("contiguous", data=np.arange(5, dtype="u2"), track_times=False)
        f.attrs["note"] = "userblock of 512 bytes"


def hostile(out):
    # Shape bombs (Keras 3.15 would refuse): 8 GiB declared, nothing stored.
    with h5py.File(os.path.join(out, "hostile_shape_bomb.h5"), "w") as f:
        f.create_dataset("chunked_bomb", shape=(2 ** 31,), dtype="f4", chunks=(1 << 20,), track_times=False)
        f.create_dataset("contiguous_bomb", shape=(2 ** 31,), dtype="f4", track_times=False)
        f.create_dataset("ok", data=np.arange(4, dtype="f4"), track_times=False)


def layout_v5(path):
    """Chunked dataset under libver='latest'. HDF5 >= 2.0 writes data layout message version 5."""
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("chunked", data=np.arange(100, dtype="f4"), chunks=(10,), compression="gzip", track_times=False)
    return h5py.version.hdf5_version_tuple >= (2, 0, 0)


def main():
    os.makedirs(OUT, exist_ok=True)
    made = []
    for name, fn in [("keras_like_earliest", lambda p: keras_like(p, "earliest")),
                     ("keras_like_latest", lambda p: keras_like(p, "latest")),
                     ("chunked", chunked), ("links", links), ("compact_userblock", compact_and_userblock)]:
        p = os.path.join(OUT, name + ".h5")
        fn(p)
        with open(os.path.join(OUT, name + ".json"), "w") as j:
            import json
            json.dump(h5dump_json.dump(p), j, indent=1, sort_keys=True)
            j.write("\n")
        made.append(p)
    hostile(OUT)
    v5 = layout_v5(os.path.join(OUT, "unsupported_layout_v5.h5"))
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(made) + 2} files to {OUT} ({total} bytes total); "
          f"h5py {h5py.version.version}, HDF5 {h5py.version.hdf5_version}; layout v5 written: {v5}")


if __name__ == "__main__":
    main()
