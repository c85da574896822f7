#!/usr/bin/env python3
"""Print a JSON dump of an HDF5 file as h5py sees it (the strata-hdf5 oracle).

Usage: h5dump_json.py FILE

The dump lists every object depth-first by name, links included but never
followed, with exact values: attribute strings as hex of the stored bytes,
floats as hex of their float64 bits, dataset elements as hex of their
little-endian bytes. crates/hdf5/tests/common/mod.rs builds the same structure
from strata-hdf5, and the conformance tests compare the two.
"""
import json
import struct
import sys

import h5py
import numpy as np

FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scaleoffset",
           32000: "lzf", 32001: "blosc", 32004: "lz4", 32008: "bitshuffle", 32015: "zstd"}
PADS = {h5py.h5t.STR_NULLTERM: "nullterm", h5py.h5t.STR_NULLPAD: "nullpad", h5py.h5t.STR_SPACEPAD: "spacepad"}
MAX_DATA = 64 << 20


def f64_hex(values):
    return [struct.pack("<d", float(v)).hex() for v in values]


def dump_attr(obj, name):
    aid = h5py.h5a.open(obj.id, name.encode())
    shape = list(aid.shape) if aid.shape is not None else []
    out = {"shape": shape}
    tid = aid.get_type()
    cls = tid.get_class()
    if aid.get_space().get_simple_extent_type() == h5py.h5s.NULL:
        out["type"] = "unsupported"
        return out
    if cls == h5py.h5t.STRING:
        vlen = tid.is_variable_str()
        out.update(type="string", vlen=bool(vlen), utf8=tid.get_cset() == h5py.h5t.CSET_UTF8,
                   fixed_len=None if vlen else tid.get_size(), pad=PADS[tid.get_strpad()])
        if vlen:
            v = obj.attrs[name]
            items = [v] if not isinstance(v, np.ndarray) else list(v.ravel())
            out["values"] = [(x.encode("utf-8") if isinstance(x, str) else bytes(x)).hex() for x in items]
        else:
            size = tid.get_size()
            arr = np.empty(aid.shape, dtype=f"S{size}")
            aid.read(arr, mtype=tid)  # the file type: raw bytes, no charset or padding conversion
            raw = arr.tobytes()
            out["values"] = [raw[i:i + size].hex() for i in range(0, len(raw), size)]
        return out
    if cls in (h5py.h5t.INTEGER, h5py.h5t.ENUM):
        base = tid if cls == h5py.h5t.INTEGER else tid.get_super()
        if base.get_class() != h5py.h5t.INTEGER:
            out["type"] = "unsupported"
            return out
        signed = base.get_sign() != h5py.h5t.SGN_NONE
        v = np.asarray(obj.attrs[name]).ravel()
        out.update(type="int" if signed else "uint", values=[int(x) for x in v])
        return out
    if cls == h5py.h5t.FLOAT and tid.get_size() in (2, 4, 8):
        v = np.asarray(obj.attrs[name], dtype=np.float64).ravel()
        out.update(type="float", values=f64_hex(v))
        return out
    if cls == h5py.h5t.OPAQUE:
        arr = np.empty(aid.shape, dtype=f"V{tid.get_size()}")
        aid.read(arr, mtype=tid)
        out.update(type="opaque", data=arr.tobytes().hex())
        return out
    out["type"] = "unsupported"
    return out


def dump_attrs(obj):
    return {name: dump_attr(obj, name) for name in sorted(obj.attrs.keys(), key=lambda s: s.encode())}


def dtype_name(ds):
    dt = ds.dtype
    if h5py.check_string_dtype(dt) is not None or dt.kind in "SU":
        return "str"
    if dt.kind == "b":
        return "bool"
    if dt.kind in "iuf":
        return np.dtype(dt.str.replace(">", "<")).name
    if dt.kind == "V" and dt.itemsize == 2 and ds.attrs.get("dtype") in ("bfloat16", b"bfloat16"):
        return "bfloat16"
    if dt.kind == "V" and dt.names is None:
        return f"opaque ({dt.itemsize} bytes)"
    return "other"


def dump_dataset(ds):
    out = {"kind": "dataset", "shape": list(ds.shape) if ds.shape is not None else [],
           "dtype": dtype_name(ds), "attrs": dump_attrs(ds)}
    dcpl = ds.id.get_create_plist()
    layout = dcpl.get_layout()
    filters = [FILTERS.get(dcpl.get_filter(i)[0], f"filter {dcpl.get_filter(i)[0]}") for i in range(dcpl.get_nfilters())]
    if dcpl.get_external_count() > 0:
        out["storage"] = "external"
    elif layout == h5py.h5d.VIRTUAL:
        out["storage"] = "virtual"
    elif layout == h5py.h5d.COMPACT:
        out["storage"] = "compact"
    elif layout == h5py.h5d.CHUNKED:
        out["storage"] = "chunked"
        out["filters"] = filters
    elif ds.id.get_offset() is None:
        out["storage"] = "unallocated"
    else:
        out["storage"] = "contiguous"
        out["offset"] = ds.id.get_offset()
        out["len"] = ds.id.get_storage_size()
    name = out["dtype"]
    nbytes = int(np.prod(ds.shape or ())) * ds.dtype.itemsize if ds.shape is not None else 0
    if out["storage"] in ("external", "virtual") or name in ("str", "other") or name.startswith("opaque") or nbytes > MAX_DATA:
        out["data"] = None
    else:
        arr = np.asarray(ds[()])
        if arr.dtype.kind in "iuf":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        out["data"] = arr.tobytes().hex()
    return out


def dump(path):
    objects = {}
    seen = set()
    with h5py.File(path, "r") as f:
        objects["/"] = {"kind": "group", "attrs": dump_attrs(f)}
        seen.add(f.id)

        def walk(group, prefix):
            for name in sorted(group.keys(), key=lambda s: s.encode()):
                p = prefix + name if prefix == "/" else prefix + "/" + name
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.SoftLink):
                    objects[p] = {"kind": "soft_link", "target": link.path}
                elif isinstance(link, h5py.ExternalLink):
                    objects[p] = {"kind": "external_link", "file": link.filename, "path": link.path}
                elif isinstance(link, h5py.HardLink):
                    cls = group.get(name, getclass=True)
                    obj = group[name]
                    if cls is h5py.Group:
                        objects[p] = {"kind": "group", "attrs": dump_attrs(obj)}
                        if obj.id not in seen:
                            seen.add(obj.id)
                            walk(obj, p)
                    elif cls is h5py.Dataset:
                        objects[p] = dump_dataset(obj)
                    elif cls is h5py.Datatype:
                        objects[p] = {"kind": "other", "what": "named datatype"}
                    else:
                        objects[p] = {"kind": "other", "what": str(cls)}
                else:
                    objects[p] = {"kind": "other", "what": "user-defined link"}

        walk(f, "/")
    return {"objects": objects}


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    json.dump(dump(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
