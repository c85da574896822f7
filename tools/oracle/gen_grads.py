"""Keras 3 gradients of the engine fixture models, for crates/layers/tests/grad_keras.rs.

For each case fixtures/engine/keras3/<family>/<case>/ (model.keras + io.npz), with one fixed random
cotangent c_i per output (numpy seeded from the case name), tf.GradientTape gives the gradient of
    L = sum_i sum(out_i * c_i),   out = model(inputs, training=False)
with respect to every float model input and every trainable weight. Written to
<out>/<family>/<case>.npz:
    c_<i>        the cotangent of output i (float32, the output's shape)
    gin_<k>      dL/d(input k), for each float input (absent for integer inputs)
    w_<j>        trainable weight j's value (model.trainable_weights order), so the reader can
                 find the tensor it was loaded as
    gw_<j>       dL/d(weight j) (zeros where TensorFlow returns None: the weight is not used)
    o<i>/gin_<k>, o<i>/gw_<j>   (models with several outputs) the same for sum(out_i * c_i) alone,
                 written only where non-zero
and <out>/<family>/<case>.json: {"weights": [{"path", "shape", "connected"}], "inputs": [{"dtype",
"grad"}], "outputs": n, "output_grad": [bool per output: some input or weight gradient of
sum(out_i * c_i) is non-zero]}.

    python gen_grads.py OUT_DIR [--case family/case ...]      (gen_grads.sh: OUT_DIR = fixtures/engine_grads/keras3)

All cases together are ~0.55 MB, so they are committed (fixtures/engine_grads/keras3/) rather than
kept in the oracle cache. `w_<j>` also catches stale gradients: after gen_engine.sh rewrites a case,
its weights no longer match and grad_keras.rs says so.
"""

import argparse
import json
import os
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.pop("TF_USE_LEGACY_KERAS", None)

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)

import numpy as np  # noqa: E402
import oracle_common as oc  # noqa: E402

K = oc.import_keras("keras3")
oc.register_custom_objects(K, "keras3")
import tensorflow as tf  # noqa: E402

ROOT = os.path.abspath(os.path.join(here, "..", ".."))
ENGINE = os.path.join(ROOT, "fixtures", "engine", "keras3")


def all_cases():
    out = []
    for fam in sorted(os.listdir(ENGINE)):
        for case in sorted(os.listdir(os.path.join(ENGINE, fam))):
            if os.path.exists(os.path.join(ENGINE, fam, case, "io.npz")):
                out.append(f"{fam}/{case}")
    return out


def gen_case(rel, out_root):
    d = os.path.join(ENGINE, rel)
    with oc.safe_mode_scope(K, "keras3", False):
        model = K.models.load_model(os.path.join(d, "model.keras"), compile=False, safe_mode=False)
    io = np.load(os.path.join(d, "io.npz"))
    n_in = len([k for k in io.files if k.startswith("in_")])
    n_out = len([k for k in io.files if k.startswith("out_")])
    inputs = [io[f"in_{k}"] for k in range(n_in)]
    rng = np.random.default_rng(zlib.crc32(f"grad:{rel}".encode()))
    cots = [rng.normal(size=io[f"out_{i}"].shape).astype(np.float32) for i in range(n_out)]
    tins = [tf.constant(x) for x in inputs]
    float_in = [np.issubdtype(x.dtype, np.floating) for x in inputs]
    weights = list(model.trainable_weights)
    with tf.GradientTape(persistent=True) as tape:
        for t, f in zip(tins, float_in):
            if f:
                tape.watch(t)
        feed = tins if len(tins) > 1 else tins[0]
        outs = flatten_tf(model(feed, training=False))
        if len(outs) != n_out:
            raise RuntimeError(f"{rel}: {len(outs)} outputs, io.npz has {n_out}")
        per_output = [tf.reduce_sum(tf.cast(o, tf.float32) * c) for o, c in zip(outs, cots)]
        loss = tf.add_n(per_output)
    arrays = {f"c_{i}": c for i, c in enumerate(cots)}
    meta = {"outputs": n_out, "inputs": [], "weights": []}
    for k, (t, f) in enumerate(zip(tins, float_in)):
        g = tape.gradient(loss, t) if f else None
        if g is not None:
            arrays[f"gin_{k}"] = np.asarray(g, dtype=np.float32)
        meta["inputs"].append({"dtype": str(inputs[k].dtype), "grad": g is not None})
    wg = tape.gradient(loss, weights)
    for j, (w, g) in enumerate(zip(weights, wg)):
        arrays[f"w_{j}"] = np.asarray(w.numpy(), dtype=np.float32)
        if isinstance(g, tf.IndexedSlices):
            g = tf.convert_to_tensor(g)
        arrays[f"gw_{j}"] = np.zeros(w.shape, np.float32) if g is None else np.asarray(g, dtype=np.float32)
        meta["weights"].append({"path": w.path, "shape": list(w.shape), "connected": g is not None})
    # Which outputs carry any gradient at all (an int cast, floor or sign does not): the reader
    # may leave those off its tape.
    targets = [t for t, f in zip(tins, float_in) if f] + weights
    meta["output_grad"] = []
    names = [f"gin_{k}" for k, f in enumerate(float_in) if f] + [f"gw_{j}" for j in range(len(weights))]
    for i, term in enumerate(per_output):
        gs = tape.gradient(term, targets) if targets else []
        gs = [None if g is None else np.asarray(tf.convert_to_tensor(g), dtype=np.float32) for g in gs]
        meta["output_grad"].append(any(g is not None and bool(np.any(g != 0)) for g in gs))
        # Per-output gradients of multi-output models (non-zero ones only), so a reader whose
        # forward cannot differentiate some outputs yet can still check the others.
        if n_out > 1:
            for name, g in zip(names, gs):
                if g is not None and np.any(g != 0):
                    arrays[f"o{i}/{name}"] = g
    del tape
    os.makedirs(os.path.join(out_root, os.path.dirname(rel)), exist_ok=True)
    np.savez_compressed(os.path.join(out_root, rel + ".npz"), **arrays)
    oc.dump_json(meta, os.path.join(out_root, rel + ".json"))


def flatten_tf(pred):
    if isinstance(pred, dict):
        return [pred[k] for k in sorted(pred)]
    if isinstance(pred, (list, tuple)):
        out = []
        for p in pred:
            out.extend(flatten_tf(p))
        return out
    return [pred]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--case", action="append")
    args = ap.parse_args()
    K.utils.set_random_seed(1234)
    failed = []
    for rel in args.case or all_cases():
        try:
            gen_case(rel, args.out)
        except Exception as e:  # one broken case must not hide the others
            failed.append(rel)
            print(f"gen_grads: {rel}: {type(e).__name__}: {e}", file=sys.stderr)
    # the stamp tells the test the whole set was written by this generator version
    if not args.case:
        with open(os.path.join(args.out, "done"), "w") as f:
            f.write(json.dumps({"keras": K.__version__, "failed": failed}) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
