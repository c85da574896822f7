"""Keras 3 oracle for strata-train's callbacks.

Drives each Keras callback with a tiny compiled model through fixed, synthetic epoch logs
(plateaus, NaN, improvements smaller than min_delta) and records, per epoch: `stop_training`,
the optimizer's learning rate, the logs after `on_epoch_end` (callbacks add `learning_rate`),
which checkpoint files exist, and everything the callback printed; at the end the CSV file's
text, the epoch whose weights were restored and the printed text of `on_train_end`.

Writes fixtures/train/callbacks.json. Non-finite floats are written as the strings "nan",
"inf", "-inf" (JSON has no NaN).

    ~/.cache/strata/oracle/venv/bin/python tools/oracle/gen_callbacks.py
"""

import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.pop("TF_USE_LEGACY_KERAS", None)

import numpy as np  # noqa: E402
import keras  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "fixtures", "train", "callbacks.json")
NAN = float("nan")

# Epoch log sequences: (loss, val_loss, accuracy, val_accuracy) per epoch.
PLATEAU = [
    (1.0, 0.9, 0.50, 0.45),
    (0.8, 0.7, 0.60, 0.55),
    (0.79, 0.69995, 0.61, 0.55005),  # improvements smaller than min_delta
    (0.7, 0.7, 0.62, 0.56),
    (0.69, 0.71, 0.63, 0.54),
    (0.68, 0.72, 0.64, 0.54),
    (0.6, 0.5, 0.70, 0.70),
    (0.59, 0.50005, 0.71, 0.70),
    (0.58, 0.51, 0.72, 0.69),
    (0.57, 0.52, 0.73, 0.68),
    (0.56, 0.53, 0.74, 0.67),
    (0.55, 0.54, 0.75, 0.66),
]
WITH_NAN = [
    (1.0, 0.9, 0.5, 0.5),
    (0.9, NAN, 0.6, 0.6),
    (NAN, 0.8, 0.7, 0.7),
    (0.7, 0.7, 0.8, 0.8),
    (0.6, 0.75, 0.8, 0.8),
]


def seq_logs(seq, keys=("loss", "val_loss", "accuracy", "val_accuracy")):
    # Keras order: loss, metrics, val_loss, val_metrics.
    order = ["loss", "accuracy", "val_loss", "val_accuracy"]
    out = []
    for row in seq:
        d = dict(zip(("loss", "val_loss", "accuracy", "val_accuracy"), row))
        out.append([[k, d[k]] for k in order if k in keys])
    return out


def cases():
    C = keras.callbacks
    c = []

    def add(name, make, seq, lr=0.1, batches=None, keys=None):
        c.append(dict(name=name, make=make, logs=seq_logs(seq, keys) if keys else seq_logs(seq), lr=lr,
                      batches=batches))

    add("es_default", lambda d: C.EarlyStopping(), PLATEAU)
    add("es_patience3_verbose", lambda d: C.EarlyStopping(patience=3, verbose=1), PLATEAU)
    add("es_min_delta", lambda d: C.EarlyStopping(min_delta=0.001, patience=1, verbose=1), PLATEAU)
    add("es_acc_auto", lambda d: C.EarlyStopping(monitor="val_accuracy", patience=2, verbose=1), PLATEAU)
    add("es_loss_max", lambda d: C.EarlyStopping(monitor="loss", mode="max", patience=1), PLATEAU)
    add("es_baseline", lambda d: C.EarlyStopping(baseline=0.6, patience=2, verbose=1), PLATEAU)
    add("es_restore", lambda d: C.EarlyStopping(patience=2, restore_best_weights=True, verbose=1), PLATEAU)
    add("es_restore_no_stop", lambda d: C.EarlyStopping(patience=20, restore_best_weights=True, verbose=1),
        PLATEAU[:5])
    add("es_start_from", lambda d: C.EarlyStopping(patience=1, start_from_epoch=4, verbose=1), PLATEAU)
    add("es_nan", lambda d: C.EarlyStopping(patience=2, verbose=1, restore_best_weights=True), WITH_NAN)
    add("es_missing", lambda d: C.EarlyStopping(monitor="val_auc", mode="max", patience=1), PLATEAU[:4])

    add("ckpt_all", lambda d: C.ModelCheckpoint(os.path.join(d, "m-{epoch:02d}-{val_loss:.2f}.keras"),
                                                verbose=1), PLATEAU[:4])
    add("ckpt_best", lambda d: C.ModelCheckpoint(os.path.join(d, "best.keras"), save_best_only=True, verbose=1),
        PLATEAU)
    add("ckpt_best_weights_acc", lambda d: C.ModelCheckpoint(
        os.path.join(d, "w{epoch}_{val_accuracy:.3f}.weights.h5"), monitor="val_accuracy", save_best_only=True,
        save_weights_only=True, verbose=1), PLATEAU)
    add("ckpt_threshold", lambda d: C.ModelCheckpoint(
        os.path.join(d, "e{epoch:03d}_{loss:08.4f}_{accuracy:.1%}.keras"), monitor="loss", save_best_only=True,
        initial_value_threshold=0.7, verbose=1), PLATEAU)
    add("ckpt_nan", lambda d: C.ModelCheckpoint(os.path.join(d, "n{epoch:d}.keras"), save_best_only=True,
                                                verbose=1), WITH_NAN)
    add("ckpt_format", lambda d: C.ModelCheckpoint(
        os.path.join(d, "f{epoch:>4}_{val_loss}_{loss:+.3e}_{accuracy:<8.2f}|.keras"), verbose=0), PLATEAU[:3])

    add("rlr_default", lambda d: C.ReduceLROnPlateau(verbose=1), PLATEAU)
    add("rlr_patience1", lambda d: C.ReduceLROnPlateau(patience=1, factor=0.5, verbose=1), PLATEAU)
    add("rlr_cooldown_minlr", lambda d: C.ReduceLROnPlateau(patience=1, factor=0.2, cooldown=2, min_lr=0.003,
                                                            verbose=1), PLATEAU)
    add("rlr_acc_min_delta", lambda d: C.ReduceLROnPlateau(monitor="val_accuracy", patience=1, min_delta=0.01,
                                                           factor=0.5, verbose=1), PLATEAU)
    add("rlr_nan", lambda d: C.ReduceLROnPlateau(patience=1, factor=0.5, verbose=1), WITH_NAN)

    add("csv_default", lambda d: C.CSVLogger(os.path.join(d, "log.csv")), PLATEAU[:4])
    add("csv_sep_no_val", lambda d: C.CSVLogger(os.path.join(d, "log.csv"), separator=";"), PLATEAU[:3],
        keys=("loss", "accuracy"))
    add("csv_nan", lambda d: C.CSVLogger(os.path.join(d, "log.csv")), WITH_NAN)

    add("nan_batches", lambda d: C.TerminateOnNaN(), PLATEAU[:4],
        batches=[[1.0, 0.9], [0.8, 0.7, float("inf")], [0.5], [0.4]])
    add("nan_batches_nan", lambda d: C.TerminateOnNaN(), PLATEAU[:4], batches=[[1.0], [0.8], [NAN, 0.1], [0.4]])

    add("lrs_halve", lambda d: C.LearningRateScheduler(lambda e, lr: lr * 0.5 if e >= 2 else lr, verbose=1),
        PLATEAU[:5])
    add("lrs_exp", lambda d: C.LearningRateScheduler(lambda e, lr: 0.01 * math.exp(-0.3 * e), verbose=1),
        PLATEAU[:4], lr=0.01)
    return c


# The schedules above, named so the Rust test can rebuild the same closures.
SCHEDULES = {"lrs_halve": "halve_from_2", "lrs_exp": "exp_0.01_0.3"}


def enc(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def make_model(lr):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="binary_crossentropy",
                  metrics=["accuracy"])
    x = np.zeros((4, 2), np.float32)
    y = np.zeros((4, 1), np.float32)
    model.fit(x, y, epochs=1, verbose=0)  # builds the compiled metrics (auto mode reads them)
    model.optimizer.learning_rate = lr
    return model


def mark(model, epoch):
    """Sets every weight to the epoch number, so restored weights tell which epoch they came from."""
    model.set_weights([np.full(w.shape, float(epoch), w.dtype) for w in model.get_weights()])


def run_case(case):
    d = tempfile.mkdtemp(prefix="strata-cb-")
    try:
        model = make_model(case["lr"])
        cb = case["make"](d)
        cb.set_model(model)
        model.stop_training = False
        rec = {"name": case["name"], "lr": case["lr"], "logs": [[[k, enc(v)] for k, v in e] for e in case["logs"]],
               "batches": [[enc(v) for v in b] for b in case["batches"]] if case["batches"] else None,
               "epochs": []}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cb.on_train_begin()
        rec["begin_out"] = out.getvalue()
        for epoch, logs in enumerate(case["logs"]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                cb.on_epoch_begin(epoch)
                lr_begin = float(model.optimizer.learning_rate.numpy())
                if case["batches"]:
                    for b, loss in enumerate(case["batches"][epoch]):
                        cb.on_train_batch_end(b, {"loss": loss})
                mark(model, epoch)
                logs_d = {k: v for k, v in logs}
                cb.on_epoch_end(epoch, logs_d)
            files = sorted(os.listdir(d))
            rec["epochs"].append({
                "stop_training": bool(model.stop_training),
                "lr_begin": lr_begin,
                "lr": float(model.optimizer.learning_rate.numpy()),
                "logs_after": [[k, enc(v)] for k, v in logs_d.items()],
                "files": [f for f in files if not f.endswith(".csv")],
                "out": out.getvalue().replace(d + os.sep, "<DIR>/"),
            })
            if model.stop_training:
                break
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cb.on_train_end()
        rec["end_out"] = out.getvalue().replace(d + os.sep, "<DIR>/")
        w = model.get_weights()[0].ravel()[0]
        rec["weights_epoch"] = float(w)
        csv = os.path.join(d, "log.csv")
        rec["csv"] = open(csv, newline="").read() if os.path.exists(csv) else None
        if case["name"] in SCHEDULES:
            rec["schedule"] = SCHEDULES[case["name"]]
        return rec
    finally:
        shutil.rmtree(d)


# Progress bar runs: the clock is scripted (Progbar reads `time.time()` once when created and once
# per update), batch logs are (loss, mae) pairs, epoch logs add val_loss; records what is printed.
PROGBAR_RUNS = [
    dict(name="v1_two_epochs", verbose=1, epochs=2, steps=4,
         clock=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 10.0, 10.03, 10.5, 75.0, 4000.0, 4100.0]),
    dict(name="v1_throttled", verbose=1, epochs=1, steps=3, clock=[0.0, 0.01, 0.02, 0.03, 0.2]),
    dict(name="v1_unknown_steps", verbose=1, epochs=1, steps=None, clock=[0.0, 1.5, 3.0, 4.5, 6.0]),
    dict(name="v1_long_eta", verbose=1, epochs=1, steps=200, clock=[0.0, 30.0, 60.0]),
    dict(name="v2_two_epochs", verbose=2, epochs=2, steps=4,
         clock=[0.0, 0.002, 0.004, 0.006, 0.008, 0.010, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0]),
    dict(name="auto_one_epoch", verbose="auto", epochs=1, steps=2, clock=[0.0, 0.0004, 0.0008, 0.0012]),
]
PROGBAR_BATCHES = 4


def progbar_batch_logs(b):
    return [["loss", 0.5 / (b + 1)], ["mae", 0.0005 * (b + 1)]]


def progbar_epoch_logs(e):
    return [["loss", 0.1234 + e], ["mae", 0.2], ["val_loss", -0.5 + e]]


def run_progbar(run):
    from keras.src.callbacks.progbar_logger import ProgbarLogger
    from keras.src.utils import progbar as pb

    times = list(run["clock"])
    calls = [0]

    def fake_time():
        t = times[min(calls[0], len(times) - 1)]
        calls[0] += 1
        return t

    real = pb.time.time
    pb.time.time = fake_time
    try:
        cb = ProgbarLogger()
        cb.set_params({"verbose": run["verbose"], "epochs": run["epochs"], "steps": run["steps"]})
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            cb.on_train_begin()
            for e in range(run["epochs"]):
                cb.on_epoch_begin(e)
                n = run["steps"] or PROGBAR_BATCHES
                for b in range(n):
                    cb.on_train_batch_end(b, dict(progbar_batch_logs(b)))
                cb.on_epoch_end(e, dict(progbar_epoch_logs(e)))
            cb.on_train_end()
    finally:
        pb.time.time = real
    n = run["steps"] or PROGBAR_BATCHES
    return {**run, "verbose": str(run["verbose"]), "out": out.getvalue(),
            "batch_logs": [progbar_batch_logs(b) for b in range(n)],
            "epoch_logs": [progbar_epoch_logs(e) for e in range(run["epochs"])]}


def main():
    assert keras.__version__ == "3.15.1", keras.__version__
    records = [run_case(c) for c in cases()]
    progbar = [run_progbar(r) for r in PROGBAR_RUNS]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"keras_version": keras.__version__, "cases": records, "progbar": progbar,
                   "progbar_batches": PROGBAR_BATCHES}, f, indent=None, allow_nan=False)
        f.write("\n")
    print(f"wrote {OUT} ({len(records)} cases)", file=sys.stderr)


if __name__ == "__main__":
    main()
