"""Checks a model file strata's `save_model` wrote against the Keras-written original.

    check_saved.py ORIGINAL SAVED --inputs io.npz

Loads both with `keras.saving.load_model` (compile=True) and checks that
* predictions on every `in_*` array of io.npz are equal (rtol 1e-6, atol 1e-7);
* the optimizer's `iterations` and every optimizer variable are equal;
* the compile config round-tripped: loss and optimizer class and its config.
Prints `OK` and exits 0, or prints what differs and exits 1.
"""
import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import keras  # noqa: E402


def compare_h5_state(original, saved, errors):
    import h5py
    import json

    with h5py.File(original, "r") as fo, h5py.File(saved, "r") as fs:
        to = json.loads(fo.attrs["training_config"]) if "training_config" in fo.attrs else None
        ts = json.loads(fs.attrs["training_config"]) if "training_config" in fs.attrs else None
        if to != ts:
            errors.append(f"training_config: {to} vs {ts}")
        if ("optimizer_weights" in fo) != ("optimizer_weights" in fs):
            errors.append("optimizer_weights present in only one file")
            return
        if "optimizer_weights" not in fo:
            return
        def names(f):
            return [n.decode() if isinstance(n, bytes) else str(n) for n in f["optimizer_weights"].attrs["weight_names"]]

        no, ns = names(fo), names(fs)
        if len(no) != len(ns) or no[:2] != ns[:2]:
            errors.append(f"optimizer weight names: {no} vs {ns}")
        for a, b in zip(no, ns):
            va, vb = fo["optimizer_weights"][a][()], fs["optimizer_weights"][b][()]
            if va.dtype != vb.dtype or va.shape != vb.shape or not np.array_equal(va, vb):
                errors.append(f"optimizer weight {a} vs {b} differs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("original")
    ap.add_argument("saved")
    ap.add_argument("--inputs", required=True)
    a = ap.parse_args()
    errors = []
    try:
        orig = keras.saving.load_model(a.original)
        compiled = True
    except ValueError as e:
        # Keras 3.15.1 cannot compile its own legacy .h5 when the metrics name a function
        # ("Could not deserialize 'keras.metrics.mse' ..."): then the saved file must fail the
        # same way, and the optimizer state and training config are compared as stored.
        compiled = False
        try:
            keras.saving.load_model(a.saved)
            errors.append(f"the original failed to compile ({e}) but the saved file did not")
        except ValueError as e2:
            if str(e2) != str(e):
                errors.append(f"compile error differs: {e} vs {e2}")
        orig = keras.saving.load_model(a.original, compile=False)
    saved = keras.saving.load_model(a.saved, compile=compiled)
    if not compiled:
        compare_h5_state(a.original, a.saved, errors)
    io = np.load(a.inputs)
    xs = [io[k] for k in sorted(io.files) if k.startswith("in_")]
    x = xs[0] if len(xs) == 1 else xs
    po, ps = orig.predict(x, verbose=0), saved.predict(x, verbose=0)
    for i, (o, s) in enumerate(zip(keras.tree.flatten(po), keras.tree.flatten(ps))):
        if not np.allclose(o, s, rtol=1e-6, atol=1e-7):
            errors.append(f"output {i} differs: max abs diff {np.max(np.abs(o - s))}")
    oo, so = getattr(orig, "optimizer", None), getattr(saved, "optimizer", None)
    if (oo is None) != (so is None):
        errors.append(f"optimizer: original {oo}, saved {so}")
    elif oo is not None:
        if type(oo) is not type(so):
            errors.append(f"optimizer class: {type(oo).__name__} vs {type(so).__name__}")
        if oo.get_config() != so.get_config():
            errors.append(f"optimizer config: {oo.get_config()} vs {so.get_config()}")
        if int(oo.iterations.numpy()) != int(so.iterations.numpy()):
            errors.append(f"iterations: {int(oo.iterations.numpy())} vs {int(so.iterations.numpy())}")
        if int(so.iterations.numpy()) == 0:
            errors.append("iterations is 0: the optimizer state was not restored")
        ov, sv = oo.variables, so.variables
        if len(ov) != len(sv):
            errors.append(f"optimizer variables: {len(ov)} vs {len(sv)}")
        for i, (o, s) in enumerate(zip(ov, sv)):
            o, s = np.asarray(o.numpy()), np.asarray(s.numpy())
            if o.shape != s.shape or not np.array_equal(o, s):
                errors.append(f"optimizer variable {i} ({ov[i].path}) differs")
    oc = orig._compile_config.config if getattr(orig, "_compile_config", None) else None
    sc = saved._compile_config.config if getattr(saved, "_compile_config", None) else None
    if (oc is None) != (sc is None):
        errors.append(f"compile config: {oc} vs {sc}")
    elif oc is not None:
        for k in ("loss", "metrics", "loss_weights"):
            if str(oc.get(k)) != str(sc.get(k)):
                errors.append(f"compile config {k}: {oc.get(k)} vs {sc.get(k)}")
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
