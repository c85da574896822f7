"""Keras 3 oracle for strata-train: optimizers, schedules, losses, metrics, initializers,
regularizers and constraints.

Writes fixtures/train/index.json (configs, names, scalars) and fixtures/train/<family>.npz
(arrays, keyed `<case>/<name>`). Every expected number comes from Keras 3.15.1 (TF backend).

    ~/.cache/strata/oracle/venv/bin/python tools/oracle/gen_train.py [--family optimizers ...]
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.pop("TF_USE_LEGACY_KERAS", None)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "fixtures", "train")
STEPS = 5


def f32(a):
    return np.asarray(a, dtype=np.float32)


def jsonable(x):
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# ---------------------------------------------------------------- optimizers

def optimizer_cases():
    O = keras.optimizers
    S = keras.optimizers.schedules
    return {
        "sgd": lambda: O.SGD(),
        "sgd_momentum": lambda: O.SGD(learning_rate=0.05, momentum=0.9),
        "sgd_nesterov": lambda: O.SGD(learning_rate=0.05, momentum=0.8, nesterov=True),
        "sgd_clipvalue": lambda: O.SGD(learning_rate=0.1, clipvalue=0.3),
        "sgd_weight_decay": lambda: O.SGD(learning_rate=0.1, weight_decay=0.05),
        "sgd_exp_decay": lambda: O.SGD(learning_rate=S.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True)),
        "adam": lambda: O.Adam(),
        "adam_amsgrad": lambda: O.Adam(learning_rate=0.01, amsgrad=True),
        "adam_clipnorm": lambda: O.Adam(learning_rate=0.01, clipnorm=0.5),
        "adam_global_clipnorm": lambda: O.Adam(learning_rate=0.01, global_clipnorm=0.7),
        "adam_cosine": lambda: O.Adam(learning_rate=S.CosineDecay(0.01, decay_steps=4, alpha=0.1, warmup_target=0.02, warmup_steps=2)),
        "adamw": lambda: O.AdamW(),
        "adamw_amsgrad": lambda: O.AdamW(learning_rate=0.01, weight_decay=0.1, amsgrad=True),
        "rmsprop": lambda: O.RMSprop(),
        "rmsprop_momentum_centered": lambda: O.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
        "rmsprop_centered": lambda: O.RMSprop(learning_rate=0.01, centered=True, rho=0.8),
        "adagrad": lambda: O.Adagrad(),
        "adagrad_init": lambda: O.Adagrad(learning_rate=0.1, initial_accumulator_value=0.5),
        "adadelta": lambda: O.Adadelta(learning_rate=1.0),
        "adamax": lambda: O.Adamax(learning_rate=0.01),
        "nadam": lambda: O.Nadam(learning_rate=0.01),
        "nadam_wd": lambda: O.Nadam(learning_rate=0.01, weight_decay=0.1),
        "lion": lambda: O.Lion(learning_rate=0.01),
        "lion_wd_clip": lambda: O.Lion(learning_rate=0.01, weight_decay=0.2, clipnorm=0.4),
        "adam_ema": lambda: O.Adam(learning_rate=0.05, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=3),
        "sgd_ema": lambda: O.SGD(learning_rate=0.1, momentum=0.5, use_ema=True),
        "sgd_loss_scale": lambda: O.SGD(learning_rate=0.1, loss_scale_factor=4.0),
        "adam_accumulate": lambda: O.Adam(learning_rate=0.05, gradient_accumulation_steps=2),
        "nadam_accumulate_ema": lambda: O.Nadam(learning_rate=0.05, gradient_accumulation_steps=2, use_ema=True,
                                                ema_momentum=0.7, clipvalue=0.5),
    }


def gen_optimizers(index, arrays, rng):
    out = {}
    shapes = [(3, 2), (2,)]
    for name, make in optimizer_cases().items():
        opt = make()
        init = [f32(rng.normal(size=s)) for s in shapes]
        variables = [keras.Variable(v.copy(), name=n) for v, n in zip(init, ["kernel", "bias"])]
        for i, v in enumerate(init):
            arrays[f"{name}/init_{i}"] = v
        slot_names = None
        for step in range(STEPS):
            grads = [f32(rng.normal(size=s)) for s in shapes]
            for i, g in enumerate(grads):
                arrays[f"{name}/grad_{step}_{i}"] = g
            opt.apply([tf.constant(g) for g in grads], variables)
            for i, v in enumerate(variables):
                arrays[f"{name}/var_{step}_{i}"] = f32(v.numpy())
            for j, s in enumerate(opt.variables):
                arrays[f"{name}/slot_{step}_{j}"] = f32(s.numpy())
            slot_names = [s.path for s in opt.variables]
        out[name] = {
            "config": jsonable(keras.optimizers.serialize(opt)),
            "get_config": jsonable(opt.get_config()),
            "slots": slot_names,
            "shapes": [list(s) for s in shapes],
            "steps": STEPS,
        }
    index["optimizers"] = out


# ---------------------------------------------------------------- schedules

def gen_schedules(index, arrays, rng):
    S = keras.optimizers.schedules
    cases = {
        "exponential": S.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.9),
        "exponential_staircase": S.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5, staircase=True),
        "piecewise": S.PiecewiseConstantDecay([3, 7], [0.1, 0.05, 0.01]),
        "cosine": S.CosineDecay(0.1, decay_steps=10),
        "cosine_alpha": S.CosineDecay(0.1, decay_steps=10, alpha=0.2),
        "cosine_warmup": S.CosineDecay(0.0, decay_steps=10, warmup_target=0.1, warmup_steps=5),
        "inverse_time": S.InverseTimeDecay(0.1, decay_steps=2, decay_rate=0.5),
        "inverse_time_staircase": S.InverseTimeDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True),
        "polynomial": S.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=2.0),
        "polynomial_cycle": S.PolynomialDecay(0.1, decay_steps=4, power=1.0, cycle=True),
        "cosine_restarts": S.CosineDecayRestarts(0.1, first_decay_steps=3, t_mul=2.0, m_mul=0.8, alpha=0.05),
        "cosine_restarts_t1": S.CosineDecayRestarts(0.1, first_decay_steps=4, t_mul=1.0),
    }
    out = {}
    steps = list(range(0, 25))
    for name, s in cases.items():
        arrays[f"{name}/lr"] = f32([float(s(step)) for step in steps])
        out[name] = {"config": jsonable(S.serialize(s)), "steps": steps}
    index["schedules"] = out


# ---------------------------------------------------------------- losses

def gen_losses(index, arrays, rng):
    L = keras.losses
    b, c = 4, 3
    reg_t = f32(rng.normal(size=(b, c)))
    reg_p = f32(rng.normal(size=(b, c)))
    pos_t = f32(rng.uniform(0.1, 2.0, size=(b, c)))
    pos_p = f32(rng.uniform(0.1, 2.0, size=(b, c)))
    bin_t = f32(rng.integers(0, 2, size=(b, c)))
    prob_p = f32(rng.uniform(0.05, 0.95, size=(b, c)))
    logits = f32(rng.normal(size=(b, c)) * 2)
    onehot = f32(np.eye(c)[rng.integers(0, c, size=b)])
    soft = f32(rng.uniform(0.1, 1.0, size=(b, c)))
    soft = soft / soft.sum(-1, keepdims=True)
    sparse = f32(rng.integers(0, c, size=(b,)))
    sparse_ign = sparse.copy()
    sparse_ign[1] = -1
    pm1 = f32(rng.choice([-1.0, 1.0], size=(b, c)))
    sw = f32(rng.uniform(0.2, 2.0, size=(b,)))
    t3 = f32(rng.normal(size=(2, 3, 4)))
    p3 = f32(rng.normal(size=(2, 3, 4)))
    cases = {
        "mse": (L.MeanSquaredError(), reg_t, reg_p, None),
        "mse_sw": (L.MeanSquaredError(), reg_t, reg_p, sw),
        "mse_rank3": (L.MeanSquaredError(), t3, p3, None),
        "mae": (L.MeanAbsoluteError(), reg_t, reg_p, None),
        "mae_sw": (L.MeanAbsoluteError(), reg_t, reg_p, sw),
        "mape": (L.MeanAbsolutePercentageError(), pos_t, reg_p, None),
        "msle": (L.MeanSquaredLogarithmicError(), pos_t, pos_p, None),
        "huber": (L.Huber(), reg_t, reg_p * 2, None),
        "huber_delta": (L.Huber(delta=0.5), reg_t, reg_p, sw),
        "log_cosh": (L.LogCosh(), reg_t, reg_p * 3, None),
        "bce": (L.BinaryCrossentropy(), bin_t, prob_p, None),
        "bce_sw": (L.BinaryCrossentropy(), bin_t, prob_p, sw),
        "bce_logits": (L.BinaryCrossentropy(from_logits=True), bin_t, logits, None),
        "bce_smooth": (L.BinaryCrossentropy(label_smoothing=0.2), bin_t, prob_p, None),
        "bce_logits_smooth": (L.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), bin_t, logits, sw),
        "cce": (L.CategoricalCrossentropy(), onehot, soft, None),
        "cce_unnormalized": (L.CategoricalCrossentropy(), onehot, prob_p, None),
        "cce_logits": (L.CategoricalCrossentropy(from_logits=True), onehot, logits, None),
        "cce_smooth": (L.CategoricalCrossentropy(label_smoothing=0.1), onehot, soft, sw),
        "cce_logits_smooth": (L.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), onehot, logits, None),
        "scce": (L.SparseCategoricalCrossentropy(), sparse, soft, None),
        "scce_logits": (L.SparseCategoricalCrossentropy(from_logits=True), sparse, logits, sw),
        "scce_logits_col": (L.SparseCategoricalCrossentropy(from_logits=True), sparse.reshape(b, 1), logits, None),
        "scce_ignore": (L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1), sparse_ign, logits, None),
        "kld": (L.KLDivergence(), soft, f32(prob_p / prob_p.sum(-1, keepdims=True)), None),
        "poisson": (L.Poisson(), pos_t, pos_p, None),
        "hinge": (L.Hinge(), pm1, reg_p, None),
        "hinge_binary": (L.Hinge(), bin_t, reg_p, None),
        "squared_hinge": (L.SquaredHinge(), pm1, reg_p, sw),
        "categorical_hinge": (L.CategoricalHinge(), onehot, reg_p, None),
        "cosine_similarity": (L.CosineSimilarity(), reg_t, reg_p, None),
        "cosine_similarity_axis0": (L.CosineSimilarity(axis=0), reg_t, reg_p, None),
        "mse_sum_sw": (L.MeanSquaredError(reduction="sum"), reg_t, reg_p, sw),
        "bce_mean_with_sw": (L.BinaryCrossentropy(reduction="mean_with_sample_weight"), bin_t, prob_p, sw),
        "cce_axis0": (L.CategoricalCrossentropy(axis=0), onehot.T.copy(), soft.T.copy(), None),
        "mae_rank1": (L.MeanAbsoluteError(), reg_t[0], reg_p[0], None),
        "scce_clipped": (L.SparseCategoricalCrossentropy(), sparse, f32(np.eye(c)[rng.integers(0, c, size=b)]), None),
        "bce_clipped": (L.BinaryCrossentropy(), bin_t, f32(rng.integers(0, 2, size=(b, c))), None),
    }
    out = {}
    for name, (loss, yt, yp, w) in cases.items():
        var = tf.Variable(yp)
        with tf.GradientTape() as tape:
            value = loss(tf.constant(yt), var, sample_weight=None if w is None else tf.constant(w))
        grad = tape.gradient(value, var)
        arrays[f"{name}/y_true"] = yt
        arrays[f"{name}/y_pred"] = yp
        if w is not None:
            arrays[f"{name}/sample_weight"] = w
        arrays[f"{name}/value"] = f32(value.numpy()).reshape(())
        arrays[f"{name}/grad"] = f32(grad.numpy())
        # _fn_kwargs: the options the loss really uses (Huber's delta and CosineSimilarity's axis
        # are missing from Keras's get_config).
        out[name] = {"config": jsonable(L.serialize(loss)), "sample_weight": w is not None,
                     "fn_kwargs": jsonable(loss._fn_kwargs)}
    # Function forms: name -> value on the regression pair (per-sample losses, no reduction).
    fns = {}
    for fname in ["mse", "mae", "mape", "msle", "mean_squared_error", "mean_absolute_error", "log_cosh", "huber",
                  "poisson", "kld", "kl_divergence", "hinge", "squared_hinge", "categorical_hinge", "cosine_similarity"]:
        fn = L.get(fname)
        yt, yp = (pos_t, pos_p)
        arrays[f"fn_{fname}/value"] = f32(fn(tf.constant(yt), tf.constant(yp)).numpy())
        fns[fname] = {"y_true": "pos_t", "y_pred": "pos_p", "resolved": getattr(fn, "__name__", str(fn))}
    arrays["pos_t"] = pos_t
    arrays["pos_p"] = pos_p
    index["losses"] = out
    index["loss_functions"] = fns


# ---------------------------------------------------------------- metrics

def gen_metrics(index, arrays, rng):
    M = keras.metrics
    b, c = 6, 4
    batches = 3
    def probs():
        p = f32(rng.uniform(0.01, 1.0, size=(b, c)))
        return f32(p / p.sum(-1, keepdims=True))
    data = {
        "onehot": [(f32(np.eye(c)[rng.integers(0, c, size=b)]), probs()) for _ in range(batches)],
        "sparse": [(f32(rng.integers(0, c, size=(b, 1))), probs()) for _ in range(batches)],
        "binary": [(f32(rng.integers(0, 2, size=(b, 1))), f32(rng.uniform(0, 1, size=(b, 1)))) for _ in range(batches)],
        "regression": [(f32(rng.normal(size=(b, 2))), f32(rng.normal(size=(b, 2)))) for _ in range(batches)],
        "labels": [(f32(rng.integers(0, c, size=(b, 1))), f32(rng.integers(0, c, size=(b, 1)))) for _ in range(batches)],
    }
    sws = [f32(rng.uniform(0.1, 2.0, size=(b,))) for _ in range(batches)]
    cases = {
        "accuracy": (lambda: M.Accuracy(), "labels", False),
        "binary_accuracy": (lambda: M.BinaryAccuracy(), "binary", False),
        "binary_accuracy_threshold": (lambda: M.BinaryAccuracy(threshold=0.3), "binary", True),
        "categorical_accuracy": (lambda: M.CategoricalAccuracy(), "onehot", False),
        "sparse_categorical_accuracy": (lambda: M.SparseCategoricalAccuracy(), "sparse", True),
        "top_k": (lambda: M.TopKCategoricalAccuracy(k=2), "onehot", False),
        "sparse_top_k": (lambda: M.SparseTopKCategoricalAccuracy(k=2), "sparse", False),
        "mae": (lambda: M.MeanAbsoluteError(), "regression", False),
        "mse": (lambda: M.MeanSquaredError(), "regression", True),
        "rmse": (lambda: M.RootMeanSquaredError(), "regression", False),
        "rmse_sw": (lambda: M.RootMeanSquaredError(), "regression", True),
        "precision": (lambda: M.Precision(), "binary", False),
        "precision_threshold": (lambda: M.Precision(thresholds=0.3), "binary", True),
        "recall": (lambda: M.Recall(), "binary", False),
        "recall_sw": (lambda: M.Recall(), "binary", True),
        "auc": (lambda: M.AUC(), "binary", False),
        "auc_pr": (lambda: M.AUC(curve="PR"), "binary", False),
        "auc_sw": (lambda: M.AUC(num_thresholds=50), "binary", True),
        "auc_minoring": (lambda: M.AUC(summation_method="minoring"), "binary", False),
    }
    out = {}
    for name, (make, kind, weighted) in cases.items():
        m = make()
        results = []
        for i, (yt, yp) in enumerate(data[kind]):
            arrays[f"{name}/y_true_{i}"] = yt
            arrays[f"{name}/y_pred_{i}"] = yp
            if weighted:
                arrays[f"{name}/sample_weight_{i}"] = sws[i]
                m.update_state(yt, yp, sample_weight=sws[i])
            else:
                m.update_state(yt, yp)
            results.append(float(m.result()))
        arrays[f"{name}/results"] = f32(results)
        m.reset_state()
        out[name] = {"config": jsonable(M.serialize(m)), "batches": batches, "weighted": weighted,
                     "after_reset": float(m.result())}
    # Mean (loss tracker)
    m = M.Mean(name="loss")
    vals = f32(rng.normal(size=(4,)))
    res = []
    for v in vals:
        m.update_state(v)
        res.append(float(m.result()))
    arrays["mean/values"] = vals
    arrays["mean/results"] = f32(res)
    out["mean"] = {"config": jsonable(M.serialize(m))}
    index["metrics"] = out


# ---------------------------------------------------------------- initializers

def gen_initializers(index, arrays, rng):
    from keras.src.initializers.random_initializers import compute_fans
    I = keras.initializers
    fan_shapes = [[5], [4, 3], [3, 3, 2, 8], [5, 4, 6], [2, 3, 3, 4, 5], [], [7, 1, 1, 2]]
    fans = [{"shape": s, "fans": [float(x) for x in compute_fans(tuple(s))]} for s in fan_shapes]
    names = ["zeros", "ones", "random_normal", "random_uniform", "truncated_normal", "glorot_normal",
             "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "orthogonal",
             "identity", "variance_scaling"]
    shape = (3, 3, 40, 60)
    stats = {}
    for n in names:
        init = I.get(n)
        s = (60, 40) if n in ("orthogonal", "identity") else shape
        x = np.asarray(init(s), dtype=np.float64)
        stats[n] = {"config": jsonable(I.serialize(init)), "shape": list(s), "mean": float(x.mean()),
                    "std": float(x.std()), "min": float(x.min()), "max": float(x.max())}
    extra = {
        "constant": I.Constant(0.25),
        "random_normal_p": I.RandomNormal(mean=1.0, stddev=0.5, seed=3),
        "random_uniform_p": I.RandomUniform(minval=-0.2, maxval=0.6),
        "truncated_normal_p": I.TruncatedNormal(mean=0.5, stddev=2.0),
        "vs_fan_out_uniform": I.VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform"),
        "vs_fan_avg_untruncated": I.VarianceScaling(scale=0.5, mode="fan_avg", distribution="untruncated_normal"),
        "orthogonal_gain": I.Orthogonal(gain=2.0),
        "identity_gain": I.Identity(gain=3.0),
    }
    for n, init in extra.items():
        s = (60, 40) if n.startswith(("orthogonal", "identity")) else shape
        x = np.asarray(init(s), dtype=np.float64)
        stats[n] = {"config": jsonable(I.serialize(init)), "shape": list(s), "mean": float(x.mean()),
                    "std": float(x.std()), "min": float(x.min()), "max": float(x.max())}
    arrays["identity/value"] = f32(I.Identity(gain=3.0)((4, 6)))
    index["initializers"] = {"fans": fans, "stats": stats}


# ---------------------------------------------------------------- regularizers / constraints

def gen_regularizers(index, arrays, rng):
    R = keras.regularizers
    C = keras.constraints
    x = f32(rng.normal(size=(4, 3)))
    x4 = f32(rng.normal(size=(2, 2, 3, 4)))
    arrays["x"] = x
    arrays["x4"] = x4
    regs = {"l1": R.L1(0.03), "l2": R.L2(0.02), "l1l2": R.L1L2(l1=0.01, l2=0.04), "l1l2_default": R.L1L2(),
            "l2_default": R.L2()}
    out = {}
    for n, r in regs.items():
        var = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(var)
            v = r(var)
        arrays[f"{n}/value"] = f32(v.numpy()).reshape(())
        g = tape.gradient(v, var)  # None when the penalty does not depend on x (all factors 0)
        arrays[f"{n}/grad"] = f32(np.zeros_like(x) if g is None else g.numpy())
        out[n] = {"config": jsonable(R.serialize(r))}
    index["regularizers"] = out
    cons = {"max_norm": C.MaxNorm(max_value=1.2), "max_norm_axis1": C.MaxNorm(max_value=0.8, axis=1),
            "non_neg": C.NonNeg(), "unit_norm": C.UnitNorm(), "unit_norm_axis1": C.UnitNorm(axis=1),
            "min_max_norm": C.MinMaxNorm(min_value=0.5, max_value=1.5, rate=0.7),
            "min_max_norm_axis": C.MinMaxNorm(min_value=0.9, max_value=1.1, rate=1.0, axis=[0, 1, 2])}
    outc = {}
    for n, c in cons.items():
        for src in ("x4",) if n == "min_max_norm_axis" else ("x", "x4"):
            arrays[f"{n}/{src}"] = f32(c(tf.constant(arrays[src])).numpy())
        outc[n] = {"config": jsonable(C.serialize(c))}
    index["constraints"] = outc


FAMILIES = {
    "optimizers": gen_optimizers,
    "schedules": gen_schedules,
    "losses": gen_losses,
    "metrics": gen_metrics,
    "initializers": gen_initializers,
    "regularizers": gen_regularizers,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", action="append", choices=sorted(FAMILIES))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "index.json")
    index = json.load(open(path)) if os.path.exists(path) else {}
    index["keras_version"] = keras.__version__
    index["backend"] = keras.backend.backend()
    for fam in args.family or sorted(FAMILIES):
        rng = np.random.default_rng(sum(map(ord, fam)))
        keras.utils.set_random_seed(1234)
        arrays = {}
        FAMILIES[fam](index, arrays, rng)
        np.savez_compressed(os.path.join(OUT, f"{fam}.npz"), **arrays)
        print(f"{fam}: {len(arrays)} arrays", file=sys.stderr)
    with open(path, "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
