"""Generates Keras fixtures for strata's tests (see tools/oracle/README.md).

    python gen_fixtures.py --impl keras3  --out fixtures/keras3   [--case mlp ...]
    TF_USE_LEGACY_KERAS=1 python gen_fixtures.py --impl tfkeras --out fixtures/tfkeras

Run with the oracle venv's python (tools/oracle/setup.sh prints it). For each case it builds a
small model with fixed seeds, writes every format the implementation can write, reloads each
file and compares predictions, and writes meta.json + io.npz (layout: fixture-spec in README).
"""

import argparse
import os
import re
import shutil
import sys
import traceback
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle_common as oc  # noqa: E402

SEED = 1234
RTOL = 1e-5
ATOL = 1e-6

# ---------------------------------------------------------------------------------------------
# cases: each returns dict(model=, inputs=[np arrays], description=, [fit=(x, y)], [unsafe=True])
# ---------------------------------------------------------------------------------------------


def _rng(name):
    import numpy as np

    return np.random.default_rng(zlib.crc32(name.encode()))


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype("float32")


def case_mlp(K, impl, rng):
    L = K.layers
    m = K.Sequential(
        [K.Input((8,)), L.Dense(4, activation="relu"), L.Dense(3, activation="softmax")], name="mlp"
    )
    m.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = _f32(rng, 3, 8)
    y = rng.uniform(size=(3, 3)).astype("float32")
    return dict(
        model=m,
        inputs=[x],
        fit=([x], y),
        description="Sequential Input(8)->Dense(4,relu)->Dense(3,softmax), compiled adam/mse/mae, one fit step",
    )


def case_functional_multi_io(K, impl, rng):
    L = K.layers
    a = K.Input((6,), name="in_a")
    b = K.Input((4,), name="in_b")
    pa = L.Dense(5, activation="tanh", name="proj_a")(a)
    x = L.Concatenate(name="concat")([pa, b])
    h = L.Dense(8, activation="relu", name="hidden")(x)
    cls = L.Dense(3, activation="softmax", name="cls")(h)
    reg = L.Dense(2, name="reg")(h)
    m = K.Model([a, b], {"cls": cls, "reg": reg}, name="multi_io")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 6), _f32(rng, 3, 4)],
        description="functional, inputs [in_a(6), in_b(4)], concatenate, dict outputs {cls(3), reg(2)} (out_i in sorted key order)",
    )


def case_nested(K, impl, rng):
    L = K.layers
    inner_seq = K.Sequential(
        [K.Input((6,)), L.Dense(5, activation="relu", name="seq_dense_1"), L.Dense(4, name="seq_dense_2")],
        name="inner_seq",
    )
    fi = K.Input((4,), name="inner_in")
    fo = L.Dense(3, activation="tanh", name="inner_dense")(fi)
    inner_func = K.Model(fi, fo, name="inner_func")
    x = K.Input((6,), name="x")
    h = inner_seq(x)
    h = inner_func(h)
    out = L.Dense(2, name="head")(h)
    m = K.Model(x, out, name="outer")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 6)],
        description="functional outer model containing a Sequential (inner_seq) and a functional model (inner_func)",
    )


def case_shared_layer(K, impl, rng):
    L = K.layers
    a = K.Input((5,), name="left")
    b = K.Input((5,), name="right")
    shared = L.Dense(3, activation="relu", name="shared")
    s = L.Add(name="add")([shared(a), shared(b)])
    out = L.Dense(2, name="out")(s)
    m = K.Model([a, b], out, name="shared_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 5), _f32(rng, 3, 5)],
        description="one Dense ('shared') called on two inputs, outputs added, then Dense(2)",
    )


def case_conv1d(K, impl, rng):
    L = K.layers
    x = K.Input((10, 3), name="x")
    h = L.Conv1D(4, 3, activation="relu", name="conv1d")(x)
    h = L.Conv1D(4, 2, strides=2, padding="same", dilation_rate=1, use_bias=False, name="conv1d_strided")(h)
    h = L.SeparableConv1D(3, 2, padding="same", name="sepconv1d")(h)
    h = L.Conv1DTranspose(2, 3, strides=2, name="conv1d_transpose")(h)
    m = K.Model(x, h, name="conv1d_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 2, 10, 3)],
        description="Conv1D (valid, strided/same/no bias), SeparableConv1D, Conv1DTranspose(strides 2)",
    )


def case_conv2d(K, impl, rng):
    L = K.layers
    x = K.Input((8, 8, 3), name="x")
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv2d")(x)
    h = L.Conv2D(4, (2, 3), strides=(2, 1), dilation_rate=1, name="conv2d_rect")(h)
    h = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(h)
    h = L.SeparableConv2D(3, 3, padding="same", depth_multiplier=1, name="separable")(h)
    h = L.Conv2D(2, 3, dilation_rate=2, padding="same", name="conv2d_dilated")(h)
    h = L.Conv2DTranspose(2, 3, strides=2, padding="same", name="conv2d_transpose")(h)
    m = K.Model(x, h, name="conv2d_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 2, 8, 8, 3)],
        description="Conv2D (same/rect kernel+stride/dilated), DepthwiseConv2D(mult 2), SeparableConv2D, Conv2DTranspose",
    )


def case_conv3d(K, impl, rng):
    L = K.layers
    x = K.Input((6, 6, 6, 2), name="x")
    h = L.Conv3D(3, 3, activation="relu", name="conv3d")(x)
    h = L.Conv3DTranspose(2, 2, strides=2, name="conv3d_transpose")(h)
    m = K.Model(x, h, name="conv3d_model")
    return dict(model=m, inputs=[_f32(rng, 2, 6, 6, 6, 2)], description="Conv3D then Conv3DTranspose(strides 2)")


def case_pooling(K, impl, rng):
    L = K.layers
    x1 = K.Input((8, 3), name="x1")
    x2 = K.Input((8, 8, 3), name="x2")
    x3 = K.Input((4, 4, 4, 2), name="x3")
    h1 = L.MaxPooling1D(2, name="max1d")(x1)
    h1 = L.AveragePooling1D(2, padding="same", name="avg1d")(h1)
    o1 = L.Concatenate(name="cat1")([L.GlobalAveragePooling1D(name="gavg1d")(h1), L.GlobalMaxPooling1D(name="gmax1d")(x1)])
    h2 = L.MaxPooling2D(2, name="max2d")(x2)
    h2 = L.AveragePooling2D(3, strides=1, padding="same", name="avg2d")(h2)
    o2 = L.Concatenate(name="cat2")([L.GlobalMaxPooling2D(name="gmax2d")(h2), L.GlobalAveragePooling2D(name="gavg2d")(x2)])
    h3 = L.MaxPooling3D(2, name="max3d")(x3)
    h3b = L.AveragePooling3D(2, strides=1, name="avg3d")(x3)
    o3 = L.Concatenate(name="cat3")([L.GlobalMaxPooling3D(name="gmax3d")(h3), L.GlobalAveragePooling3D(name="gavg3d")(h3b)])
    m = K.Model([x1, x2, x3], [o1, o2, o3], name="pooling_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 2, 8, 3), _f32(rng, 2, 8, 8, 3), _f32(rng, 2, 4, 4, 4, 2)],
        description="Max/Average pooling 1D/2D/3D and Global{Max,Average}Pooling{1,2,3}D; three outputs",
    )


def case_normalization(K, impl, rng):
    L = K.layers
    x = K.Input((6,), name="x")
    h = L.Dense(8, name="dense_in")(x)
    h = L.BatchNormalization(name="bn")(h)
    h = L.LayerNormalization(name="ln")(h)
    note = ""
    if hasattr(L, "GroupNormalization"):
        h = L.Reshape((2, 4), name="to_groups")(h)
        h = L.GroupNormalization(groups=2, axis=-1, name="gn")(h)
        h = L.Flatten(name="flat")(h)
    else:
        note = " (no GroupNormalization in this implementation)"
    if hasattr(L, "UnitNormalization"):
        h = L.UnitNormalization(name="unit_norm")(h)
    out = L.Dense(2, name="out")(h)
    m = K.Model(x, out, name="norm_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 6)],
        description="BatchNormalization (moving stats set non-trivially), LayerNormalization, GroupNormalization, UnitNormalization"
        + note,
    )


def case_recurrent(K, impl, rng):
    L = K.layers
    x = K.Input((5, 3), name="x")
    h = L.SimpleRNN(4, return_sequences=True, name="simple_rnn")(x)
    h = L.LSTM(4, return_sequences=True, name="lstm")(h)
    h = L.GRU(4, reset_after=True, return_sequences=True, name="gru_reset_after")(h)
    h = L.GRU(3, reset_after=False, return_sequences=True, name="gru_reset_before")(h)
    seq = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bidi_lstm")(h)
    last = L.LSTM(2, go_backwards=True, name="lstm_last")(seq)
    m = K.Model(x, [seq, last], name="recurrent_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 2, 5, 3)],
        description="SimpleRNN, LSTM, GRU(reset_after=True), GRU(reset_after=False), Bidirectional(LSTM) return_sequences; LSTM go_backwards last state",
    )


def case_attention(K, impl, rng):
    L = K.layers
    q = K.Input((4, 6), name="query")
    v = K.Input((5, 6), name="value")
    mha = L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")(q, v)
    att = L.Attention(use_scale=True, name="attention")([q, v])
    add = L.AdditiveAttention(name="additive_attention")([q, v])
    h = L.Concatenate(name="concat")([mha, att, add])
    out = L.Dense(2, name="out")(h)
    m = K.Model([q, v], out, name="attention_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 2, 4, 6), _f32(rng, 2, 5, 6)],
        description="MultiHeadAttention(2 heads, key_dim 3), Attention(use_scale), AdditiveAttention over query(4,6)/value(5,6)",
    )


def case_merge(K, impl, rng):
    L = K.layers
    a = K.Input((5,), name="a")
    b = K.Input((5,), name="b")
    outs = [
        L.Add(name="add")([a, b]),
        L.Subtract(name="subtract")([a, b]),
        L.Multiply(name="multiply")([a, b]),
        L.Average(name="average")([a, b]),
        L.Maximum(name="maximum")([a, b]),
        L.Minimum(name="minimum")([a, b]),
        L.Concatenate(axis=-1, name="concatenate")([a, b]),
        L.Dot(axes=1, name="dot")([a, b]),
        L.Dot(axes=1, normalize=True, name="dot_normalized")([a, b]),
    ]
    out = L.Concatenate(name="all")(outs)
    m = K.Model([a, b], out, name="merge_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 5), _f32(rng, 3, 5)],
        description="Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot, Dot(normalize) concatenated",
    )


def case_reshape(K, impl, rng):
    L = K.layers
    x = K.Input((4, 4, 2), name="x")
    h = L.Cropping2D(((1, 0), (0, 1)), name="crop")(x)  # 3x3x2
    h = L.ZeroPadding2D(1, name="pad")(h)  # 5x5x2
    h = L.UpSampling2D(2, name="up")(h)  # 10x10x2
    h = L.Permute((3, 1, 2), name="permute")(h)  # 2x10x10
    h = L.Flatten(name="flatten")(h)  # 200
    h = L.Dense(6, name="dense")(h)
    h = L.RepeatVector(3, name="repeat")(h)  # 3x6
    h = L.Reshape((2, 9), name="reshape")(h)
    m = K.Model(x, h, name="reshape_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 2, 4, 4, 2)],
        description="Cropping2D, ZeroPadding2D, UpSampling2D, Permute, Flatten, Dense, RepeatVector, Reshape",
    )


def case_embedding_masking(K, impl, rng):
    import numpy as np

    L = K.layers
    tok = K.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(10, 4, mask_zero=True, name="embedding")(tok)
    o1 = L.LSTM(3, name="lstm_tokens")(e)
    seq = K.Input((5, 3), name="seq")
    ms = L.Masking(mask_value=0.0, name="masking")(seq)
    o2 = L.LSTM(3, name="lstm_masked")(ms)
    m = K.Model([tok, seq], [o1, o2], name="masking_model")
    tokens = np.array([[3, 1, 4, 1, 5, 0], [9, 2, 6, 0, 0, 0], [7, 0, 0, 0, 0, 0]], dtype="int32")
    s = _f32(rng, 3, 5, 3)
    s[0, 3:] = 0.0
    s[1, 1] = 0.0
    s[2, 4] = 0.0
    return dict(
        model=m,
        inputs=[tokens, s],
        description="Embedding(10,4,mask_zero) on int32 tokens -> LSTM; Masking(0.0) on float seq -> LSTM; masked steps in inputs",
    )


def case_preprocessing(K, impl, rng):
    L = K.layers
    x = K.Input((4,), name="x")
    norm = L.Normalization(axis=-1, name="normalization")
    adapt = (rng.standard_normal((20, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 5.0]).astype("float32")
    norm.adapt(adapt)
    h = L.Rescaling(0.5, offset=-1.0, name="rescaling")(x)
    h = norm(h)
    out = L.Dense(2, name="out")(h)
    m = K.Model(x, out, name="preprocessing_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 4)],
        description="Rescaling(0.5, offset=-1) then Normalization adapted on 20 samples (mean/variance/count weights), Dense(2)",
    )


def case_lambda(K, impl, rng):
    L = K.layers
    # Compiled from a string so the marshalled code object carries a fixed co_filename
    # ("<strata-oracle>") instead of this file's absolute path.
    fn = eval(compile("lambda x: x * 2.0 + 1.0", "<strata-oracle>", "eval"))
    x = K.Input((4,), name="x")
    h = L.Dense(3, name="dense")(x)
    h = L.Lambda(fn, name="lambda")(h)
    m = K.Model(x, h, name="lambda_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 4)],
        unsafe=True,
        description="Dense(3) then Lambda(lambda x: x * 2.0 + 1.0); loading needs safe_mode=False",
    )


def case_custom_layer(K, impl, rng):
    CustomDense = oc.register_custom_objects(K, impl)["CustomDense"]
    x = K.Input((10,), name="x")
    h = CustomDense(32, name="custom_dense")(x)
    out = K.layers.Dense(1, name="out")(h)
    m = K.Model(x, out, name="custom_layer_model")
    m.compile(optimizer="adam", loss="mse")
    xs = _f32(rng, 3, 10)
    ys = _f32(rng, 3, 1)
    return dict(
        model=m,
        inputs=[xs],
        fit=([xs], ys),
        description="Input(10)->CustomDense(32) (my_custom_layers>CustomDense, weights w/b)->Dense(1), adam/mse, one fit step",
    )


def case_custom_loss(K, impl, rng):
    custom_loss = oc.register_custom_objects(K, impl)["custom_loss"]
    L = K.layers
    x = K.Input((4,), name="x")
    h = L.Dense(3, activation="relu", name="dense")(x)
    out = L.Dense(1, name="out")(h)
    m = K.Model(x, out, name="custom_loss_model")
    m.compile(optimizer="adam", loss=custom_loss)
    xs = _f32(rng, 3, 4)
    ys = _f32(rng, 3, 1)
    return dict(
        model=m,
        inputs=[xs],
        fit=([xs], ys),
        description="Dense(3,relu)->Dense(1) compiled with registered loss my_custom_losses>custom_loss, one fit step",
    )


def case_dtype_variety(K, impl, rng):
    L = K.layers
    x = K.Input((4,), name="x")
    h = L.Dense(5, dtype="float16", name="dense_f16")(x)
    h = L.Dense(5, dtype="float64", name="dense_f64")(h)
    if impl == "tfkeras":
        from tf_keras import mixed_precision

        mixed = mixed_precision.Policy("mixed_float16")
    else:
        mixed = "mixed_float16"
    h = L.Dense(4, dtype=mixed, name="dense_mixed")(h)
    out = L.Dense(2, dtype="float32", name="out")(h)
    m = K.Model(x, out, name="dtype_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 4)],
        description="Dense layers with dtype float16, float64, mixed_float16 policy, then float32 output",
    )


def case_dtype_bfloat16(K, impl, rng):
    L = K.layers
    x = K.Input((4,), name="x")
    h = L.Dense(4, dtype="bfloat16", name="dense_bf16")(x)
    out = L.Dense(2, dtype="float32", name="out")(h)
    m = K.Model(x, out, name="bfloat16_model")
    return dict(
        model=m,
        inputs=[_f32(rng, 3, 4)],
        description="Dense with dtype bfloat16 (HDF5: 2-byte OPAQUE, Keras 3 adds attr dtype=bfloat16), then float32 Dense",
    )


CASES = {
    "mlp": case_mlp,
    "functional_multi_io": case_functional_multi_io,
    "nested": case_nested,
    "shared_layer": case_shared_layer,
    "conv1d": case_conv1d,
    "conv2d": case_conv2d,
    "conv3d": case_conv3d,
    "pooling": case_pooling,
    "normalization": case_normalization,
    "recurrent": case_recurrent,
    "attention": case_attention,
    "merge": case_merge,
    "reshape": case_reshape,
    "embedding_masking": case_embedding_masking,
    "preprocessing": case_preprocessing,
    "lambda": case_lambda,
    "custom_layer": case_custom_layer,
    "custom_loss": case_custom_loss,
    "dtype_variety": case_dtype_variety,
    "dtype_bfloat16": case_dtype_bfloat16,
}

# ---------------------------------------------------------------------------------------------


def perturb_weights(model, rng):
    """Give biases and BatchNormalization statistics non-default values so that a reader that
    swaps or drops them is caught. Kernels keep Keras's seeded initialisation."""
    import numpy as np

    for layer in _all_layers(model):
        ws = layer.weights
        if not ws or _is_container(layer):
            continue
        vals = layer.get_weights()
        changed = False
        for i, (w, v) in enumerate(zip(ws, vals)):
            leaf = _leaf_name(w)
            if leaf in ("bias", "beta", "moving_mean", "b"):
                vals[i] = (rng.standard_normal(v.shape) * 0.1).astype(v.dtype)
                changed = True
            elif leaf in ("gamma", "moving_variance", "scale"):
                vals[i] = rng.uniform(0.5, 1.5, size=v.shape).astype(v.dtype)
                changed = True
        if changed:
            layer.set_weights(vals)


def _leaf_name(w):
    name = getattr(w, "path", None) or w.name
    name = name.split("/")[-1]
    return name.split(":")[0]


def _is_container(layer):
    return hasattr(layer, "layers") and isinstance(getattr(layer, "layers"), list) and len(layer.layers) > 0


def _all_layers(model):
    out = []
    for layer in model.layers:
        if _is_container(layer):
            out.extend(_all_layers(layer))
        else:
            out.append(layer)
            # wrappers (Bidirectional) own sub-layers
            for attr in ("forward_layer", "backward_layer"):
                sub = getattr(layer, attr, None)
                if sub is not None:
                    out.append(sub)
    return out


def _err(e):
    # Keras colours some messages with ANSI escapes; strip them.
    msg = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(e).__name__}: {e}")
    # Object addresses ("<function dot at 0x7f...>") change every run.
    msg = re.sub(r" at 0x[0-9a-fA-F]+", " at 0x...", msg)
    msg = re.sub(r"(shared_object_id['\"]?:\s*)\d+", r"\1<id>", msg)
    return msg if len(msg) <= 2000 else msg[:2000] + "...[truncated]"


def run_case(K, impl, name, outdir, versions):
    import numpy as np
    import tensorflow as tf

    K.utils.set_random_seed(SEED)
    rng = _rng(name)
    spec = CASES[name](K, impl, rng)
    model = spec["model"]
    inputs = spec["inputs"]
    unsafe = spec.get("unsafe", False)
    custom_objects = oc.register_custom_objects(K, impl)

    if "fit" in spec:
        fx, fy = spec["fit"]
        model.fit(fx if len(fx) > 1 else fx[0], fy, epochs=1, batch_size=len(fy), shuffle=False, verbose=0)
    perturb_weights(model, np.random.default_rng(zlib.crc32(("w:" + name).encode())))

    feed = inputs if len(inputs) > 1 else inputs[0]
    expected = oc.flatten_outputs(model.predict(feed, batch_size=len(inputs[0]), verbose=0))

    case_dir = os.path.join(outdir, name)
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)

    files = {}
    h5 = {}

    def predict_with(m):
        return oc.flatten_outputs(m.predict(feed, batch_size=len(inputs[0]), verbose=0))

    def check(fname, loader, compile_arg=False):
        entry = files[fname]
        try:
            if compile_arg:
                try:
                    m2 = loader(True)
                except Exception as e:  # noqa: BLE001
                    # Loading with compile=True failed: record why, then judge the file on inference.
                    m2 = loader(False)
                    entry["compile_error"] = _err(e)
            else:
                m2 = loader()
            ok, diff, err = oc.compare(expected, predict_with(m2), RTOL, ATOL)
            entry["ok"] = ok
            entry["max_abs_diff"] = diff
            if err:
                entry["error"] = "reload: " + err
        except Exception as e:  # noqa: BLE001
            entry["ok"] = False
            entry["error"] = "reload: " + _err(e)

    def save(fname, saver):
        path = os.path.join(case_dir, fname)
        try:
            saver(path)
            files[fname] = {"saved": True}
            return path
        except Exception as e:  # noqa: BLE001
            files[fname] = {"saved": False, "ok": False, "error": "save: " + _err(e)}
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
            return None

    def unsafe_scope():
        return oc.safe_mode_scope(K, impl, False if unsafe else True)

    def fresh_from_json(js):
        with unsafe_scope():
            return K.models.model_from_json(js, custom_objects=custom_objects)

    # model.json
    js = None
    p = save("model.json", lambda path: open(path, "w").write(model.to_json()))
    if p:
        js = open(p).read()

        def load_json():
            m2 = fresh_from_json(js)
            m2.set_weights(model.get_weights())
            # Normalization caches mean/variance at build time; load_model calls this too.
            for layer in _all_layers(m2):
                if hasattr(layer, "finalize_state"):
                    layer.finalize_state()
            return m2

        check("model.json", load_json)

    # model.keras
    p = save("model.keras", lambda path: model.save(path))
    if p:
        h5["model.keras:model.weights.h5"] = oc.h5_in_keras_zip(p)
        if unsafe:
            try:
                K.models.load_model(p, custom_objects=custom_objects, safe_mode=True)
                files["model.keras"]["safe_mode_error"] = None
            except Exception as e:  # noqa: BLE001
                files["model.keras"]["safe_mode_error"] = _err(e)
        check(
            "model.keras",
            lambda c: K.models.load_model(p, custom_objects=custom_objects, compile=c, safe_mode=not unsafe),
            compile_arg=True,
        )

    # model.h5 (legacy full model)
    p = save("model.h5", lambda path: model.save(path))
    if p:
        h5["model.h5"] = oc.h5_datasets_of(p)

        def load_h5(c, safe=not unsafe):
            if impl == "keras3":
                return K.models.load_model(p, custom_objects=custom_objects, compile=c, safe_mode=safe)
            with oc.safe_mode_scope(K, impl, safe):
                return K.models.load_model(p, custom_objects=custom_objects, compile=c)

        if unsafe:
            try:
                load_h5(False, safe=True)
                files["model.h5"]["safe_mode_error"] = None
            except Exception as e:  # noqa: BLE001
                files["model.h5"]["safe_mode_error"] = _err(e)

        check("model.h5", load_h5, compile_arg=True)

    # model.weights.h5 (Keras 3 weights layout; tf-keras also writes it for this suffix)
    def load_weights_into_fresh(path):
        def f():
            m2 = fresh_from_json(js if js is not None else model.to_json())
            oc.scramble_weights(m2)
            m2.load_weights(path)
            return m2

        return f

    p = save("model.weights.h5", lambda path: model.save_weights(path))
    if p:
        h5["model.weights.h5"] = oc.h5_datasets_of(p)
        check("model.weights.h5", load_weights_into_fresh(p))

    # weights.h5: legacy weights-only layout (tf-keras save_weights with a plain .h5 name)
    if impl == "tfkeras":
        p = save("weights.h5", lambda path: model.save_weights(path))
        if p:
            h5["weights.h5"] = oc.h5_datasets_of(p)
            check("weights.h5", load_weights_into_fresh(p))

    # io.npz
    arrays = {}
    for i, a in enumerate(inputs):
        arrays[f"in_{i}"] = np.asarray(a)
    for i, a in enumerate(expected):
        arrays[f"out_{i}"] = np.asarray(a)
    np.savez(os.path.join(case_dir, "io.npz"), **arrays)

    meta = {
        "generator": versions,
        "case": name,
        "description": spec["description"],
        "files": files,
        "h5_datasets": h5,
        "unsafe": unsafe,
        "seed": SEED,
        "tolerance": {"rtol": RTOL, "atol": ATOL},
    }
    meta.update(oc.describe_model(impl, model))
    oc.dump_json(meta, os.path.join(case_dir, "meta.json"))
    del tf
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=oc.IMPLS, required=True)
    ap.add_argument("--out", required=True, help="output folder, e.g. fixtures/keras3")
    ap.add_argument("--case", action="append", help="only these cases (repeatable); default all")
    args = ap.parse_args()

    K = oc.import_keras(args.impl)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()

    versions = oc.versions(K, args.impl)
    names = args.case or list(CASES)
    for n in names:
        if n not in CASES:
            raise SystemExit(f"unknown case {n!r}; known: {', '.join(CASES)}")
    os.makedirs(args.out, exist_ok=True)
    if not args.case:
        # drop case folders that no longer exist in CASES
        for d in os.listdir(args.out):
            if os.path.isdir(os.path.join(args.out, d)) and d not in CASES:
                shutil.rmtree(os.path.join(args.out, d))

    failures = 0
    for n in names:
        try:
            files = run_case(K, args.impl, n, args.out, versions)
        except Exception:  # noqa: BLE001
            failures += 1
            print(f"[{args.impl}] {n}: CASE FAILED", file=sys.stderr)
            traceback.print_exc()
            continue
        bad = {f: e.get("error", "") for f, e in files.items() if not e.get("ok")}
        status = "ok" if not bad else "; ".join(f"{f}: {e[:160]}" for f, e in bad.items())
        print(f"[{args.impl}] {n}: {status}", flush=True)
    if failures:
        raise SystemExit(f"{failures} case(s) could not be generated at all (see tracebacks above)")


if __name__ == "__main__":
    main()
