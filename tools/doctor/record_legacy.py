"""Loads real Lambda files from several Keras/CPython pairs and records what happened.

Run by tools/doctor/gen_lambda_files.sh (step `legacy`) as:
  <python> tools/doctor/record_legacy.py load <impl> FILE     (one load, prints one JSON line)
  <python> tools/doctor/record_legacy.py record               (drives every loader; writes
                                                               fixtures/doctor/lambda/legacy_results.json)
Loaders: Keras 3.15.1 and tf-keras 2.21 on CPython 3.11 (oracle venv, safe_mode=False where it
exists), Keras 2.2.4 on TF 1.15 / CPython 3.6 and tf.keras 2.13 on CPython 3.11 (legacy venvs).
Files: the committed legacy fixtures with a Lambda (Keras 1.0-2.3 from CPython 2.7 and 3.6,
tf-keras 2.21 and Keras 3.15.1 from CPython 3.11). The Lambdas are `lambda x: ...` arithmetic
from the project's own oracle scripts; nothing else is loaded.
"""
from __future__ import print_function
import json, os, subprocess, sys

HOME = os.path.expanduser("~")
ORACLE = os.environ.get("STRATA_ORACLE_DIR", os.path.join(HOME, ".cache/strata/oracle"))
LOADERS = {
    "keras3.15.1-py3.11": (os.path.join(ORACLE, "venv/bin/python"), {}),
    "tfkeras2.21-py3.11": (os.path.join(ORACLE, "venv/bin/python"), {"TF_USE_LEGACY_KERAS": "1"}),
    "keras2.2.4-py3.6": (os.path.join(ORACLE, "legacy/py36/bin/python"),
                         {"PYTHONPATH": os.path.join(ORACLE, "legacy/keras/2.2.4"), "KERAS_BACKEND": "tensorflow"}),
    "tf2.13-py3.11": (os.path.join(ORACLE, "legacy/py311/bin/python"), {}),
}
FILES = [
    "fixtures/keras1_tf/lambda/model.h5",
    "fixtures/keras1_1_tf/lambda/model.h5",
    "fixtures/keras1_th/lambda/model.h5",
    "fixtures/keras2_0_8/lambda/model.h5",
    "fixtures/keras2_2_4/lambda/model.h5",
    "fixtures/keras2_3_1/lambda/model.h5",
    "fixtures/tfkeras/lambda/model.h5",
    "fixtures/keras3/lambda/model.h5",
]


def first_line(e):
    text = str(e).strip()
    return "%s: %s" % (type(e).__name__, text.splitlines()[0] if text else "")


def load(impl, path):
    import numpy as np
    res = {"python": "%d.%d" % sys.version_info[:2]}
    try:
        if impl.startswith("keras3"):
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            import keras
            m = keras.saving.load_model(path, compile=False, safe_mode=False)
        elif impl.startswith("tfkeras"):
            import tf_keras
            m = tf_keras.models.load_model(path, compile=False)
        elif impl.startswith("tf2.13"):
            import tensorflow as tf
            m = tf.keras.models.load_model(path, compile=False)
        else:
            import keras
            m = keras.models.load_model(path, compile=False)
        res["load"] = "ok"
    except BaseException as e:  # noqa: BLE001 - recording what the loader raised
        res["load"] = first_line(e)
        print(json.dumps(res))
        return
    try:
        shape = [1] + [d or 1 for d in m.input_shape[1:]]
        m.predict(np.ones(shape, "float32"))
        res["predict"] = "ok"
    except BaseException as e:  # noqa: BLE001
        res["predict"] = first_line(e)
    print(json.dumps(res))


def record():
    out = {}
    for f in FILES:
        out[f] = {}
        for name, (py, env) in sorted(LOADERS.items()):
            if not os.path.exists(py):
                continue
            e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **env)
            p = subprocess.Popen([py, __file__, "load", name, f], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=e, universal_newlines=True)
            so, _ = p.communicate()
            lines = [l for l in so.splitlines() if l.startswith("{")]
            if p.returncode < 0:
                r = {"load": "killed by signal %d" % -p.returncode}
            elif lines:
                r = json.loads(lines[-1])
            else:
                r = {"load": "exit %d" % p.returncode}
            out[f][name] = r
            print(f, name, r, file=sys.stderr)
    with open("fixtures/doctor/lambda/legacy_results.json", "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2], sys.argv[3])
    else:
        record()
