"""Lambda-layer Keras files from several CPythons, and what real Keras does loading each.

Run by gen_lambda_files.sh (from the repository root):
  save     under the oracle venv (CPython 3.11, Keras 3.15.1): writes keras3_native.{keras,h5},
           then copies of both whose Lambda code is the `affine` blob (`lambda x: x * 2.0 + 1.0`)
           marshaled by each real CPython in fixtures/marshal/<version>/affine.bin (2.7, 3.6-3.14):
           keras3_py<ver>.{keras,h5}. Mixed-version files are made by splicing only the base64
           text, exactly as Keras's func_dump would have written it on that interpreter.
  load F   in a fresh process: load_model(F, compile=False) with the default safe_mode, then with
           safe_mode=False, calling the model once; prints one JSON line.
  record   runs `load` for every file in its own process (a crash is recorded as a signal) and
           writes fixtures/doctor/lambda/results.json.
  marshal  under any CPython: marshal.loads each fixtures/marshal/*/affine.bin in a subprocess and
           calls the function on 3.0; prints JSON (the reader-by-writer matrix).
Nothing here runs code from a file other than the fixed affine lambda.
"""
import base64, codecs, glob, json, marshal, os, subprocess, sys, zipfile

OUT = "fixtures/doctor/lambda"


def blob_versions():
    out = []
    for p in sorted(glob.glob("fixtures/marshal/*/affine.bin")):
        out.append((p.split("/")[2], p))
    return out


def b64(raw):
    return codecs.encode(raw, "base64").decode("ascii")


def splice_keras(src, dst, code):
    with zipfile.ZipFile(src) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for info, data in items:
            if info.filename == "config.json":
                cfg = json.loads(data)
                for layer in cfg["config"]["layers"]:
                    if layer["class_name"] == "Lambda":
                        layer["config"]["function"]["config"]["code"] = code
                data = json.dumps(cfg).encode()
            z.writestr(info, data)


def splice_h5(src, dst, code):
    import h5py, shutil
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for layer in cfg["config"]["layers"]:
            if layer["class_name"] == "Lambda":
                fn = layer["config"]["function"]
                if isinstance(fn, dict):
                    fn["config"]["code"] = code
                else:
                    fn[0] = code
        f.attrs["model_config"] = json.dumps(cfg).encode()


def save():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2.0 + 1.0, name="lam"),
                              keras.layers.Dense(2, name="dense")])
    model.save(f"{OUT}/keras3_native.keras")
    model.save(f"{OUT}/keras3_native.h5")
    for ver, path in blob_versions():
        code = b64(open(path, "rb").read())
        splice_keras(f"{OUT}/keras3_native.keras", f"{OUT}/keras3_py{ver}.keras", code)
        splice_h5(f"{OUT}/keras3_native.h5", f"{OUT}/keras3_py{ver}.h5", code)


def blobs():
    """Extra Lambda blobs for the doctor's tests (the running CPython compiles, never runs them)."""
    for name, src in [("globals", "lambda x: tf.abs(x) + np.pi")]:
        module = compile(src, "fixture.py", "eval")
        code = [c for c in module.co_consts if hasattr(c, "co_code")][0]
        with open("%s/blob_%s_py%d.%d.b64" % ((OUT, name) + sys.version_info[:2]), "w") as fh:
            fh.write(b64(marshal.dumps(code)))


def truncated_save():
    """tf-keras failing to save two unnamed weights (both `Variable:0`), leaving a cut .h5, and
    what loading that file then says (keras-facts appendix, finding 1)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as K

    class TwoWeights(K.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(int(input_shape[-1]), 2))
            self.b = self.add_weight(shape=(2,))

        def call(self, x):
            return K.backend.dot(x, self.w) + self.b

    model = K.Sequential([K.Input((3,)), K.layers.Dense(3, name="dense_a"), TwoWeights(name="two"),
                          K.layers.Dense(1, name="dense")])
    path = f"{OUT}/tfkeras_truncated_save.h5"
    rec = {}
    try:
        model.save(path)
        rec["save"] = "ok"
    except BaseException as e:  # noqa: BLE001 - the failure is the fixture
        rec["save"] = outcome(lambda: (_ for _ in ()).throw(e))
    rec["load"] = outcome(lambda: K.models.load_model(path, custom_objects={"TwoWeights": TwoWeights}))
    with open(f"{OUT}/tfkeras_truncated_save.json", "w") as fh:
        json.dump(rec, fh, indent=1, sort_keys=True)
        fh.write("\n")


def outcome(fn):
    try:
        fn()
        return "ok"
    except BaseException as e:  # noqa: BLE001 - recording what Keras raised
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"{type(e).__name__}: {msg}"


def load(path):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import numpy as np
    import keras
    res = {"python": sys.version.split()[0], "keras": keras.__version__}

    def run(**kw):
        m = keras.saving.load_model(path, compile=False, **kw)
        m.predict(np.ones((1, 4), "float32"), verbose=0)

    res["safe_mode_default"] = outcome(run)
    print(json.dumps(res), flush=True)
    res["safe_mode_false"] = outcome(lambda: run(safe_mode=False))
    print(json.dumps(res), flush=True)


def record():
    results = {}
    for f in sorted(glob.glob(f"{OUT}/*.keras") + glob.glob(f"{OUT}/*.h5")):
        p = subprocess.run([sys.executable, __file__, "load", f], capture_output=True, text=True, timeout=300)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        r = json.loads(lines[-1]) if lines else {}
        if p.returncode < 0:
            r.setdefault("safe_mode_default", f"killed by signal {-p.returncode}")
            r.setdefault("safe_mode_false", f"killed by signal {-p.returncode}")
        elif "safe_mode_false" not in r:
            r["safe_mode_false"] = f"exit {p.returncode}"
        results[os.path.basename(f)] = r
        print(os.path.basename(f), r, file=sys.stderr)
    with open(f"{OUT}/results.json", "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)
        fh.write("\n")


def marshal_one(path):
    import marshal, types
    code = marshal.loads(open(path, "rb").read())
    f = types.FunctionType(code, {})
    print(json.dumps({"result": repr(f(3.0))}))


def marshal_matrix():
    res = {}
    for ver, path in blob_versions():
        p = subprocess.run([sys.executable, __file__, "marshal_one", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        if p.returncode < 0:
            res[ver] = f"killed by signal {-p.returncode}"
        elif p.returncode == 0:
            res[ver] = "ok " + json.loads(p.stdout.strip().splitlines()[-1])["result"]
        else:
            last = [l for l in p.stderr.strip().splitlines() if l.strip()]
            res[ver] = last[-1] if last else f"exit {p.returncode}"
    print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "writers": res}))


def marshal_pyodide(node_modules):
    """The CPython 3.14 reader row of the matrix, from Pyodide (one node process per blob, so a
    fatal WebAssembly trap, the WASM form of a segmentation fault, stays in that process)."""
    res = {}
    for ver, path in blob_versions():
        rel = path[len("fixtures/marshal/"):]
        p = subprocess.run(["node", "tools/marshal/run_pyodide.js", "tools/doctor/marshal_one.py", "fixtures/marshal", rel],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300,
                           env=dict(os.environ, NODE_PATH=node_modules))
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        if lines:
            res[ver] = json.loads(lines[-1])["result"]
        elif "pyodide_fatal_error" in p.stdout:
            res[ver] = "killed by a fatal WebAssembly trap (Pyodide fatal error; natively signal 11)"
        else:
            res[ver] = "exit %d" % p.returncode
    print(json.dumps({"python": "3.14", "writers": res, "runtime": "pyodide"}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "save":
        save()
    elif cmd == "load":
        load(sys.argv[2])
    elif cmd == "record":
        record()
    elif cmd == "marshal_pyodide":
        marshal_pyodide(sys.argv[2])
    elif cmd == "marshal":
        marshal_matrix()
    elif cmd == "truncated_save":
        truncated_save()
    elif cmd == "blobs":
        blobs()
    elif cmd == "marshal_one":
        marshal_one(sys.argv[2])
