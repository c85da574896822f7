# -*- coding: utf-8 -*-
"""Write strata test fixtures with OLD Keras (Keras 1.x, standalone Keras 2.0-2.3, tf.keras 2.13).

One script for every interpreter the legacy oracle uses: CPython 2.7 (TensorFlow 0.12.1),
3.6 (TensorFlow 1.15 / Theano 1.0.5) and 3.11 (tensorflow-cpu 2.13.1). Keep it Python 2.7 and 3.6
compatible: no f-strings, no keyword-only arguments, no walrus, no zero-argument super() at import time.

Usage (normally through gen_all.sh, which sets PYTHONPATH to the Keras under test):
  python gen_legacy.py --generation keras1_th --backend theano --image-ordering th --out fixtures/keras1_th
  python gen_legacy.py ... --case mlp          # one case, in this process
Without --case every case of the flavour runs in its own child process (fresh layer-name counters,
a crash in one case does not stop the others), and <out>/generation.json summarises the run.

Layout and meta.json schema: see the fixture spec (fixtures/<generation>/<case>/...).
"""
from __future__ import absolute_import, division, print_function

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import traceback
import zipfile

LAMBDA_SOURCE = "lambda x: x * 2.0 + 1.0"


def make_lambda():
    """The Lambda function, compiled with a fixed filename so the marshalled code object that Keras
    stores does not carry this checkout's path (co_filename) and is the same on every machine."""
    return eval(compile(LAMBDA_SOURCE, "<strata-fixture>", "eval"))

# Cases per flavour, in run order. Descriptions go to meta.json.
CASES = {
    "k1": [
        ("mlp", "Sequential Dense(4, relu) -> Dense(2, softmax); compiled with adam and trained one step so optimizer weights are saved"),
        ("cnn", "Sequential Convolution2D(3, 3, 3, relu) -> MaxPooling2D(2, 2) -> Flatten -> Dense(2, softmax) on 2-channel 6x6 input"),
        ("lstm", "Sequential LSTM(3) over 4 steps of 2 features -> Dense(1)"),
        ("gru", "Sequential GRU(3) over 4 steps of 2 features -> Dense(1)"),
        ("merge", "functional model with merge(mode='concat') and merge(mode='sum') of two Dense branches; two inputs, two outputs"),
        ("merge_seq", "Sequential whose first layer is Merge([Sequential, Sequential], mode='concat') -> Dense(2)"),
        ("batchnorm", "Sequential Dense(4) -> BatchNormalization(mode=0) -> Dense(2)"),
        ("embedding", "Sequential Embedding(10, 3, input_length=4) -> Flatten -> Dense(2); int32 input"),
        ("timedistributed", "Sequential TimeDistributedDense(3) -> TimeDistributed(Dense(2)) over 4 steps of 2 features"),
        ("lambda", "Sequential Dense(3) -> Lambda(" + LAMBDA_SOURCE + ") -> Dense(2); Lambda code stored as marshal text"),
    ],
    "k2": [
        ("mlp", "Sequential Dense(4, relu) -> Dense(2, softmax); compiled with adam and trained one step so optimizer weights are saved"),
        ("cnn", "Sequential Conv2D(3, (3, 3), relu) -> BatchNormalization -> MaxPooling2D -> Flatten -> Dense(2, softmax) on 2-channel 6x6 input"),
        ("lstm", "Sequential LSTM(3) over 4 steps of 2 features -> Dense(1)"),
        ("gru", "Sequential GRU(3) (this Keras's default reset_after) over 4 steps of 2 features -> Dense(1)"),
        ("functional", "functional model, inputs a(3) and b(2), concatenate -> Dense(4) -> outputs out_a Dense(2, softmax) and out_b Dense(1)"),
        ("nested", "functional model calling an inner Sequential(Dense(4), Dense(3)) then Dense(2)"),
        ("shared", "one Dense(3) applied to two inputs, add() -> Dense(1)"),
        ("bidirectional", "Sequential Bidirectional(LSTM(2)) over 4 steps of 3 features -> Dense(1)"),
        ("embedding", "Sequential Embedding(10, 3, input_length=4) -> Flatten -> Dense(2); int32 input"),
        ("lambda", "functional Dense(3) -> Lambda(" + LAMBDA_SOURCE + ") -> Dense(2); Lambda code stored as marshal base64"),
    ],
    "tf213": [
        ("mlp", "Sequential Input(3) -> Dense(4, relu) -> Dense(2, softmax); compiled with adam and trained one step"),
        ("functional", "functional model, inputs a(3) and b(2), concatenate -> Dense(4) -> outputs out_a Dense(2, softmax) and out_b Dense(1)"),
        ("nested", "functional model calling an inner Sequential(Dense(4), Dense(3)) then Dense(2)"),
        ("cnn", "Sequential Conv2D(3, (3, 3), relu) -> BatchNormalization -> MaxPooling2D -> Flatten -> Dense(2, softmax), channels_last"),
        ("custom", "Dense(3) -> registered custom layer strata>Scale (one weight vector) -> Dense(2)"),
    ],
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--generation", required=True, help="fixture generation name, e.g. keras1_th")
    p.add_argument("--out", required=True, help="output folder fixtures/<generation>")
    p.add_argument("--backend", required=True, choices=["theano", "tensorflow", "tfkeras"],
                   help="standalone Keras backend, or tfkeras for tensorflow.keras")
    p.add_argument("--image-ordering", default=None,
                   help="th|tf (Keras 1) or channels_first|channels_last (Keras 2)")
    p.add_argument("--case", default=None, help="run only this case, in this process")
    p.add_argument("--cases", default=None, help="comma-separated subset of cases (parent mode)")
    p.add_argument("--theano-cache", default=None, help="Theano base_compiledir (default: under the oracle dir)")
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------
# environment: private HOME/KERAS_HOME with keras.json, backend, Theano flags (before importing keras)

def oracle_dir():
    base = os.environ.get("STRATA_ORACLE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "strata", "oracle")
    return os.path.join(base, "legacy")


def setup_env(args):
    home = tempfile.mkdtemp(prefix="strata-legacy-home-")
    keras_dir = os.path.join(home, ".keras")
    os.makedirs(keras_dir)
    cfg = {"floatx": "float32", "epsilon": 1e-07}
    if args.backend != "tfkeras":
        cfg["backend"] = args.backend
        os.environ["KERAS_BACKEND"] = args.backend
    if args.image_ordering in ("th", "tf"):
        cfg["image_dim_ordering"] = args.image_ordering
    elif args.image_ordering:
        cfg["image_data_format"] = args.image_ordering
    with open(os.path.join(keras_dir, "keras.json"), "w") as f:
        f.write(json.dumps(cfg, indent=1, sort_keys=True, separators=(",", ": ")))
    os.environ["HOME"] = home
    os.environ["KERAS_HOME"] = keras_dir
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.backend == "theano" and "THEANO_FLAGS" not in os.environ:
        cache = args.theano_cache or os.path.join(oracle_dir(), "theano-cache")
        os.environ["THEANO_FLAGS"] = "base_compiledir={},floatX=float32,device=cpu".format(cache)
    return home


# --------------------------------------------------------------------------------------------
# small helpers

def to_jsonable(x):
    import numpy as np
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, dict):
        return dict((str(k), to_jsonable(v)) for k, v in x.items())
    if x is None or isinstance(x, (bool, float)):
        return x
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, int):
        return x
    if hasattr(x, "value") and not isinstance(x, str):  # TF1 Dimension
        return to_jsonable(x.value)
    try:
        return int(x)
    except Exception:
        return str(x)


def dump_json(path, obj):
    text = json.dumps(obj, sort_keys=True, indent=1, separators=(",", ": "))
    with open(path, "w") as f:
        f.write(text)
        f.write("\n")


def err_text(e):
    s = "{}: {}".format(type(e).__name__, e)
    return s[:2000]


def save_npz(path, arrays):
    """np.savez equivalent with fixed zip timestamps (numpy 1.16 under Python 2.7 stamps members
    with the current time), uncompressed members in sorted key order."""
    import numpy as np
    zf = zipfile.ZipFile(path, "w", zipfile.ZIP_STORED)
    try:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    finally:
        zf.close()


def h5_datasets_of(h5file):
    import h5py
    out = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out.append({"path": name, "shape": [int(d) for d in obj.shape], "dtype": str(obj.dtype)})
    h5file.visititems(visit)
    return out


def h5_datasets(path):
    import h5py
    f = h5py.File(path, "r")
    try:
        return h5_datasets_of(f)
    finally:
        f.close()


def sublayers(layer):
    subs = getattr(layer, "layers", None)
    if isinstance(subs, (list, tuple)) and len(subs) > 0:
        return list(subs)
    return None


def leaf_layers(model, seen=None):
    """Layers that own weights directly (containers and old Merge(layers=...) are expanded)."""
    if seen is None:
        seen = set()
    out = []
    for layer in model.layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        subs = sublayers(layer)
        if subs is not None:
            out.extend(leaf_layers(layer, seen))
        else:
            out.append(layer)
    return out


def layer_weights(layer):
    w = getattr(layer, "weights", None)
    if w is None:
        w = list(getattr(layer, "trainable_weights", [])) + list(getattr(layer, "non_trainable_weights", []))
    return list(w)


def model_weights(model):
    w = getattr(model, "weights", None)
    if w is None:
        w = list(model.trainable_weights) + list(model.non_trainable_weights)
    return list(w)


def uniq(ws):
    seen = set()
    out = []
    for w in ws:
        if id(w) not in seen:
            seen.add(id(w))
            out.append(w)
    return out


def weight_name(w):
    n = getattr(w, "name", None)
    return str(n) if n is not None else ""


def set_deterministic_weights(model, seed):
    """Overwrite every weight from one numpy RandomState: weights depend only on the seed, not on
    the backend's initializers. Scale-like weights (gamma, variances) are kept positive."""
    import numpy as np
    rng = np.random.RandomState(seed)
    for layer in leaf_layers(model):
        vals = layer.get_weights()
        if not vals:
            continue
        names = [weight_name(w) for w in layer_weights(layer)]
        if len(names) != len(vals):
            names = [""] * len(vals)
        new = []
        for v, n in zip(vals, names):
            ln = n.lower()
            if any(k in ln for k in ("gamma", "running_std", "running_var", "moving_variance", "_std")):
                x = rng.uniform(0.5, 1.5, v.shape)
            else:
                x = rng.uniform(-0.5, 0.5, v.shape)
            new.append(x.astype(v.dtype))
        layer.set_weights(new)


def shape_of(K, t):
    try:
        s = K.int_shape(t)
        if s is not None:
            return to_jsonable(s)
    except Exception:
        pass
    s = getattr(t, "_keras_shape", None)
    if s is not None:
        return to_jsonable(s)
    return to_jsonable(t.get_shape().as_list())


def dtype_of(t):
    d = getattr(t, "dtype", None)
    return str(getattr(d, "name", d))


def io_names(model, which):
    names = getattr(model, which + "_names", None)
    if names is None and getattr(model, "model", None) is not None:
        names = getattr(model.model, which + "_names", None)
    return names


# --------------------------------------------------------------------------------------------
# model builders; each returns dict(model=..., inputs=[np arrays], train=bool, custom_objects=...)

def rand_inputs(seed, shapes, int_high=None):
    import numpy as np
    rng = np.random.RandomState(1000 + seed)
    out = []
    for s in shapes:
        if int_high is not None:
            out.append(rng.randint(0, int_high, size=s).astype("int32"))
        else:
            out.append(rng.uniform(-1.0, 1.0, size=s).astype("float32"))
    return out


def build_k1(case, K, th):
    import keras.layers as L
    from keras.models import Sequential, Model
    B = 2
    if case == "mlp":
        m = Sequential()
        m.add(L.Dense(4, input_dim=3, activation="relu"))
        m.add(L.Dense(2, activation="softmax"))
        return dict(model=m, inputs=rand_inputs(1, [(B, 3)]), train=True)
    if case == "cnn":
        shape = (2, 6, 6) if th else (6, 6, 2)
        m = Sequential()
        m.add(L.Convolution2D(3, 3, 3, activation="relu", input_shape=shape))
        m.add(L.MaxPooling2D(pool_size=(2, 2)))
        m.add(L.Flatten())
        m.add(L.Dense(2, activation="softmax"))
        return dict(model=m, inputs=rand_inputs(2, [(B,) + shape]))
    if case in ("lstm", "gru"):
        rnn = L.LSTM if case == "lstm" else L.GRU
        m = Sequential()
        m.add(rnn(3, input_shape=(4, 2)))
        m.add(L.Dense(1))
        return dict(model=m, inputs=rand_inputs(3, [(B, 4, 2)]))
    if case == "merge":
        a = L.Input(shape=(3,), name="in_a")
        b = L.Input(shape=(3,), name="in_b")
        da = L.Dense(4, activation="tanh")(a)
        db = L.Dense(4, activation="tanh")(b)
        c = L.merge([da, db], mode="concat")
        s = L.merge([da, db], mode="sum")
        o1 = L.Dense(2, name="out_concat")(c)
        o2 = L.Dense(1, name="out_sum")(s)
        m = Model(input=[a, b], output=[o1, o2])
        return dict(model=m, inputs=rand_inputs(4, [(B, 3), (B, 3)]))
    if case == "merge_seq":
        left = Sequential()
        left.add(L.Dense(3, input_dim=2, activation="relu"))
        right = Sequential()
        right.add(L.Dense(3, input_dim=2, activation="relu"))
        m = Sequential()
        m.add(L.Merge([left, right], mode="concat"))
        m.add(L.Dense(2))
        return dict(model=m, inputs=rand_inputs(5, [(B, 2), (B, 2)]))
    if case == "batchnorm":
        m = Sequential()
        m.add(L.Dense(4, input_dim=3))
        m.add(L.BatchNormalization(mode=0))
        m.add(L.Dense(2))
        return dict(model=m, inputs=rand_inputs(6, [(B, 3)]))
    if case == "embedding":
        m = Sequential()
        m.add(L.Embedding(10, 3, input_length=4))
        m.add(L.Flatten())
        m.add(L.Dense(2))
        return dict(model=m, inputs=rand_inputs(7, [(B, 4)], int_high=10))
    if case == "timedistributed":
        m = Sequential()
        m.add(L.TimeDistributedDense(3, input_shape=(4, 2)))
        m.add(L.TimeDistributed(L.Dense(2)))
        return dict(model=m, inputs=rand_inputs(8, [(B, 4, 2)]))
    if case == "lambda":
        m = Sequential()
        m.add(L.Dense(3, input_dim=2))
        m.add(L.Lambda(make_lambda()))
        m.add(L.Dense(2))
        return dict(model=m, inputs=rand_inputs(9, [(B, 2)]), lambda_source=LAMBDA_SOURCE)
    raise ValueError("unknown Keras 1 case " + case)


def build_k2(case, K, channels_first, keras):
    L = keras.layers
    Sequential = keras.models.Sequential
    Model = keras.models.Model
    B = 2
    if case == "mlp":
        m = Sequential()
        m.add(L.Dense(4, activation="relu", input_shape=(3,)))
        m.add(L.Dense(2, activation="softmax"))
        return dict(model=m, inputs=rand_inputs(1, [(B, 3)]), train=True)
    if case == "cnn":
        shape = (2, 6, 6) if channels_first else (6, 6, 2)
        m = Sequential()
        m.add(L.Conv2D(3, (3, 3), activation="relu", input_shape=shape))
        m.add(L.BatchNormalization(axis=1 if channels_first else -1))
        m.add(L.MaxPooling2D((2, 2)))
        m.add(L.Flatten())
        m.add(L.Dense(2, activation="softmax"))
        return dict(model=m, inputs=rand_inputs(2, [(B,) + shape]))
    if case in ("lstm", "gru"):
        rnn = L.LSTM if case == "lstm" else L.GRU
        m = Sequential()
        m.add(rnn(3, input_shape=(4, 2)))
        m.add(L.Dense(1))
        return dict(model=m, inputs=rand_inputs(3, [(B, 4, 2)]))
    if case == "functional":
        a = L.Input(shape=(3,), name="a")
        b = L.Input(shape=(2,), name="b")
        h = L.concatenate([a, b])
        h = L.Dense(4, activation="relu", name="hidden")(h)
        oa = L.Dense(2, activation="softmax", name="out_a")(h)
        ob = L.Dense(1, name="out_b")(h)
        m = Model(inputs=[a, b], outputs=[oa, ob])
        return dict(model=m, inputs=rand_inputs(4, [(B, 3), (B, 2)]))
    if case == "nested":
        inner = Sequential(name="inner")
        inner.add(L.Dense(4, activation="relu", input_shape=(3,)))
        inner.add(L.Dense(3))
        x = L.Input(shape=(3,), name="x")
        y = inner(x)
        z = L.Dense(2, name="head")(y)
        m = Model(inputs=x, outputs=z)
        return dict(model=m, inputs=rand_inputs(5, [(B, 3)]))
    if case == "shared":
        a = L.Input(shape=(4,), name="left")
        b = L.Input(shape=(4,), name="right")
        shared = L.Dense(3, activation="tanh", name="shared")
        s = L.add([shared(a), shared(b)])
        o = L.Dense(1, name="out")(s)
        m = Model(inputs=[a, b], outputs=o)
        return dict(model=m, inputs=rand_inputs(6, [(B, 4), (B, 4)]))
    if case == "bidirectional":
        m = Sequential()
        m.add(L.Bidirectional(L.LSTM(2), input_shape=(4, 3)))
        m.add(L.Dense(1))
        return dict(model=m, inputs=rand_inputs(7, [(B, 4, 3)]))
    if case == "embedding":
        m = Sequential()
        m.add(L.Embedding(10, 3, input_length=4))
        m.add(L.Flatten())
        m.add(L.Dense(2))
        return dict(model=m, inputs=rand_inputs(8, [(B, 4)], int_high=10))
    if case == "lambda":
        x = L.Input(shape=(2,), name="x")
        h = L.Dense(3)(x)
        h = L.Lambda(make_lambda())(h)
        o = L.Dense(2)(h)
        m = Model(inputs=x, outputs=o)
        return dict(model=m, inputs=rand_inputs(9, [(B, 2)]), lambda_source=LAMBDA_SOURCE)
    raise ValueError("unknown Keras 2 case " + case)


def build_tf213(case, tf):
    keras = tf.keras
    L = keras.layers
    B = 2
    if case == "mlp":
        m = keras.Sequential([L.Input(shape=(3,)), L.Dense(4, activation="relu"), L.Dense(2, activation="softmax")])
        return dict(model=m, inputs=rand_inputs(1, [(B, 3)]), train=True)
    if case == "functional":
        a = L.Input(shape=(3,), name="a")
        b = L.Input(shape=(2,), name="b")
        h = L.Concatenate()([a, b])
        h = L.Dense(4, activation="relu", name="hidden")(h)
        oa = L.Dense(2, activation="softmax", name="out_a")(h)
        ob = L.Dense(1, name="out_b")(h)
        m = keras.Model(inputs=[a, b], outputs=[oa, ob])
        return dict(model=m, inputs=rand_inputs(4, [(B, 3), (B, 2)]))
    if case == "nested":
        inner = keras.Sequential([L.Input(shape=(3,)), L.Dense(4, activation="relu"), L.Dense(3)], name="inner")
        x = L.Input(shape=(3,), name="x")
        z = L.Dense(2, name="head")(inner(x))
        m = keras.Model(inputs=x, outputs=z)
        return dict(model=m, inputs=rand_inputs(5, [(B, 3)]))
    if case == "cnn":
        m = keras.Sequential([L.Input(shape=(6, 6, 2)), L.Conv2D(3, (3, 3), activation="relu"),
                              L.BatchNormalization(), L.MaxPooling2D((2, 2)), L.Flatten(),
                              L.Dense(2, activation="softmax")])
        return dict(model=m, inputs=rand_inputs(2, [(B, 6, 6, 2)]))
    if case == "custom":
        Scale = make_scale_layer(tf)
        x = L.Input(shape=(3,), name="x")
        h = L.Dense(3)(x)
        h = Scale(init=1.5, name="scale")(h)
        o = L.Dense(2)(h)
        m = keras.Model(inputs=x, outputs=o)
        return dict(model=m, inputs=rand_inputs(6, [(B, 3)]), custom_objects={"strata>Scale": Scale})
    raise ValueError("unknown tf.keras case " + case)


def make_scale_layer(tf):
    keras = tf.keras

    @keras.utils.register_keras_serializable(package="strata")
    class Scale(keras.layers.Layer):
        """Multiplies the last axis by a learned vector."""

        def __init__(self, init=1.0, **kwargs):
            super(Scale, self).__init__(**kwargs)
            self.init = init

        def build(self, input_shape):
            self.scale = self.add_weight(name="scale", shape=(int(input_shape[-1]),),
                                         initializer=keras.initializers.Constant(self.init))
            super(Scale, self).build(input_shape)

        def call(self, x):
            return x * self.scale

        def get_config(self):
            c = super(Scale, self).get_config()
            c["init"] = self.init
            return c
    return Scale


# --------------------------------------------------------------------------------------------
# one case

def run_case(args, case, description):
    import numpy as np
    np.random.seed(1234)
    gen = {"impl": "keras", "python": platform.python_version()}
    import h5py
    gen["h5py"] = h5py.__version__
    gen["numpy"] = np.__version__
    if args.backend == "tfkeras":
        import tensorflow as tf
        keras = tf.keras
        K = keras.backend
        flavour = "tf213"
        gen["impl"] = "tf.keras"
        import keras as keras_pkg  # the keras 2.13.x package that backs tf.keras
        gen["keras"] = keras_pkg.__version__
        gen["backend"] = "tensorflow"
        gen["backend_version"] = tf.__version__
        gen["tensorflow"] = tf.__version__
        gen["image_data_format"] = K.image_data_format()
        tf.random.set_seed(1234)
    else:
        import keras
        import keras.backend as K
        flavour = "k1" if keras.__version__.startswith("1.") else "k2"
        gen["keras"] = keras.__version__
        gen["backend"] = K.backend()
        if K.backend() == "theano":
            import theano
            # Keras 1.x calls theano.ifelse.ifelse without importing the submodule (older Theano
            # imported it implicitly); importing it here changes nothing else.
            import theano.ifelse  # noqa: F401
            gen["theano"] = theano.__version__
            gen["backend_version"] = theano.__version__
        else:
            import tensorflow as tf
            gen["tensorflow"] = tf.__version__
            gen["backend_version"] = tf.__version__
        if flavour == "k1":
            gen["image_dim_ordering"] = K.image_dim_ordering()
        else:
            gen["image_data_format"] = K.image_data_format()
    gen["generation"] = args.generation

    if flavour == "k1":
        built = build_k1(case, K, K.image_dim_ordering() == "th")
    elif flavour == "k2":
        built = build_k2(case, K, K.image_data_format() == "channels_first", keras)
    else:
        built = build_tf213(case, tf)
    model = built["model"]
    inputs = built["inputs"]
    custom_objects = built.get("custom_objects")

    out_dir = os.path.join(args.out, case)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)

    # compile (so training_config is written), deterministic weights, maybe one training step
    notes = []
    x = inputs if len(inputs) > 1 else inputs[0]
    if built.get("train"):
        set_deterministic_weights(model, 42)
        model.compile(optimizer="adam", loss="mse")
        rng = np.random.RandomState(7)
        y = rng.uniform(0.0, 1.0, size=(inputs[0].shape[0],) + tuple(model.output_shape[1:])).astype("float32")
        model.train_on_batch(x, y)
        notes.append("weights set from numpy RandomState(42), then one train_on_batch step with adam/mse")
        compiled = {"optimizer": "adam", "loss": "mse", "train_steps": 1}
    else:
        model.compile(optimizer="sgd", loss="mse")
        set_deterministic_weights(model, 42)
        notes.append("weights set from numpy RandomState(42); compiled with sgd/mse, never trained")
        compiled = {"optimizer": "sgd", "loss": "mse", "train_steps": 0}

    outs = model.predict(x, batch_size=8)
    if not isinstance(outs, list):
        outs = [outs]
    arrays = {}
    for i, a in enumerate(inputs):
        arrays["in_{}".format(i)] = a
    for i, o in enumerate(outs):
        arrays["out_{}".format(i)] = np.asarray(o)
    save_npz(os.path.join(out_dir, "io.npz"), arrays)

    files = {}
    h5 = {}

    def attempt(fname, fn):
        path = os.path.join(out_dir, fname)
        try:
            fn(path)
            files[fname] = {"ok": True}
        except Exception as e:
            files[fname] = {"ok": False, "error": err_text(e)}
            if os.path.exists(path):
                os.remove(path)

    if flavour == "tf213":
        attempt("model.keras", lambda p: model.save(p, save_format="keras_v3"))
    attempt("model.h5", lambda p: model.save(p))
    if flavour == "tf213":
        attempt("model.weights.h5", lambda p: model.save_weights(p))
    attempt("weights.h5", lambda p: model.save_weights(p))

    def write_json(p):
        text = model.to_json()
        with open(p, "w") as f:
            f.write(text)
    attempt("model.json", write_json)

    for fname in ("model.h5", "model.weights.h5", "weights.h5"):
        if files.get(fname, {}).get("ok"):
            h5[fname] = h5_datasets(os.path.join(out_dir, fname))
    if files.get("model.keras", {}).get("ok"):
        zf = zipfile.ZipFile(os.path.join(out_dir, "model.keras"))
        try:
            members = zf.namelist()
            files["model.keras"]["members"] = members
            if "model.weights.h5" in members:
                import h5py as _h5
                f = _h5.File(io.BytesIO(zf.read("model.weights.h5")), "r")
                try:
                    h5["model.keras:model.weights.h5"] = h5_datasets_of(f)
                finally:
                    f.close()
        finally:
            zf.close()

    # reload with the same Keras and compare outputs (a sanity check of the oracle itself)
    for fname in ("model.keras", "model.h5"):
        if not files.get(fname, {}).get("ok"):
            continue
        try:
            path = os.path.join(out_dir, fname)
            if flavour == "tf213":
                kw = {"custom_objects": custom_objects} if custom_objects else {}
                if fname == "model.keras":
                    kw["safe_mode"] = False
                m2 = keras.models.load_model(path, **kw)
            else:
                from keras.models import load_model
                m2 = load_model(path)
            o2 = m2.predict(x, batch_size=8)
            if not isinstance(o2, list):
                o2 = [o2]
            diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(outs, o2))
            files[fname]["reload_max_abs_diff"] = diff
        except Exception as e:
            files[fname]["reload_error"] = err_text(e)

    # meta
    ws = uniq(model_weights(model))
    owner = {}
    top_owner = {}
    for top in model.layers:
        subs = leaf_layers(top) if sublayers(top) is not None else [top]
        for leaf in subs:
            for w in layer_weights(leaf):
                owner.setdefault(id(w), leaf.name)
                top_owner.setdefault(id(w), top.name)
    values = [K.get_value(w) for w in ws]
    weights_meta = []
    for w, v in zip(ws, values):
        weights_meta.append({"layer": owner.get(id(w)), "top_layer": top_owner.get(id(w)), "name": weight_name(w),
                             "shape": [int(d) for d in v.shape], "dtype": str(v.dtype)})
    tw = uniq(model.trainable_weights)
    ntw = uniq(model.non_trainable_weights)

    def count_safe(wl):
        return int(sum(int(np.prod(K.get_value(w).shape)) for w in wl))

    layers_meta = []
    for layer in model.layers:
        try:
            oshape = to_jsonable(layer.output_shape)
        except Exception as e:
            oshape = None
        entry = {"name": layer.name, "class_name": type(layer).__name__, "params": int(layer.count_params()),
                 "output_shape": oshape}
        layers_meta.append(entry)

    in_tensors = list(model.inputs)
    out_tensors = list(model.outputs)
    in_names = io_names(model, "input") or [getattr(t, "name", "") for t in in_tensors]
    out_names = io_names(model, "output") or [getattr(t, "name", "") for t in out_tensors]
    meta = {
        "generator": gen,
        "case": case,
        "description": description,
        "model_class": type(model).__name__,
        "files": files,
        "inputs": [{"name": str(n), "shape": shape_of(K, t), "dtype": dtype_of(t)} for n, t in zip(in_names, in_tensors)],
        "outputs": [{"name": str(n), "shape": shape_of(K, t), "dtype": dtype_of(t)} for n, t in zip(out_names, out_tensors)],
        "total_params": int(model.count_params()),
        "trainable_params": count_safe(tw),
        "non_trainable_params": count_safe(ntw),
        "layers": layers_meta,
        "weights": weights_meta,
        "h5_datasets": h5,
        "compiled": compiled,
        "notes": notes,
        "io": {"batch": int(inputs[0].shape[0]),
               "in": [{"key": "in_{}".format(i), "shape": list(a.shape), "dtype": str(a.dtype)} for i, a in enumerate(inputs)],
               "out": [{"key": "out_{}".format(i), "shape": list(np.asarray(o).shape), "dtype": str(np.asarray(o).dtype)}
                       for i, o in enumerate(outs)]},
    }
    if built.get("lambda_source"):
        meta["lambda"] = {"source": built["lambda_source"], "python": platform.python_version(),
                          "python_implementation": platform.python_implementation()}
    if case == "gru" and flavour != "k1":
        for layer in model.layers:
            if type(layer).__name__ == "GRU":
                meta["gru_reset_after"] = layer.get_config().get("reset_after", "absent")
    dump_json(os.path.join(out_dir, "meta.json"), meta)
    print("wrote {} ({})".format(out_dir, ", ".join(sorted(k for k, v in files.items() if v.get("ok")))))
    bad = dict((k, v) for k, v in files.items() if not v.get("ok") or "reload_error" in v)
    if bad:
        print("  problems: " + json.dumps(bad, sort_keys=True))


# --------------------------------------------------------------------------------------------
# parent: one child process per case, then generation.json

def flavour_for(args):
    if args.backend == "tfkeras":
        return "tf213"
    if args.image_ordering in ("th", "tf"):
        return "k1"
    return "k2"


def run_all(args):
    flavour = flavour_for(args)
    cases = CASES[flavour]
    if args.cases:
        want = args.cases.split(",")
        cases = [c for c in cases if c[0] in want]
    if not os.path.isdir(args.out):
        os.makedirs(args.out)
    summary = {"generation": args.generation, "cases": {}}
    summary_path = os.path.join(args.out, "generation.json")
    if args.cases and os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)  # a subset run updates only its own cases
    me = os.path.abspath(__file__)
    for name, _desc in cases:
        argv = [sys.executable, me, "--generation", args.generation, "--out", args.out, "--backend", args.backend, "--case", name]
        if args.image_ordering:
            argv += ["--image-ordering", args.image_ordering]
        if args.theano_cache:
            argv += ["--theano-cache", args.theano_cache]
        print("== {} / {}".format(args.generation, name))
        sys.stdout.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = proc.communicate()
        text = out.decode("utf-8", "replace")
        lines = [l for l in text.splitlines() if l.strip()]
        meta_path = os.path.join(args.out, name, "meta.json")
        if proc.returncode == 0 and os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
            summary["generator"] = meta["generator"]
            entry = {"ok": True, "files": dict((k, v.get("ok")) for k, v in meta["files"].items())}
            problems = dict((k, v.get("error") or v.get("reload_error")) for k, v in meta["files"].items()
                            if not v.get("ok") or v.get("reload_error"))
            if problems:
                entry["problems"] = problems
            summary["cases"][name] = entry
            print("\n".join(l for l in lines if l.startswith("wrote") or l.startswith("  problems")))
        else:
            tail = [l for l in lines if "Warning" not in l and "warn(" not in l][-6:]
            summary["cases"][name] = {"ok": False, "error": "\n".join(tail)}
            shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
            print("FAILED {}:\n{}".format(name, "\n".join(tail)))
    if "generator" in summary:
        summary["generator"].pop("generation", None)
    dump_json(summary_path, summary)
    ran = set(c[0] for c in cases)
    failed = [k for k, v in summary["cases"].items() if not v["ok"] and k in ran]
    print("{}: {} ok, {} failed{}".format(args.generation, len(cases) - len(failed), len(failed),
                                         (" (" + ", ".join(sorted(failed)) + ")") if failed else ""))


def main(argv):
    args = parse_args(argv)
    args.out = os.path.abspath(args.out)
    if args.case is None:
        run_all(args)
        return 0
    home = setup_env(args)
    try:
        desc = dict(CASES[flavour_for(args)]).get(args.case)
        if desc is None:
            raise SystemExit("unknown case {} for this flavour".format(args.case))
        run_case(args, args.case, desc)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
