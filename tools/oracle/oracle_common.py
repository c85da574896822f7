"""Shared helpers for the strata Keras oracle (gen_fixtures.py, check_load.py).

Importing this module selects the Keras implementation:
  - impl "keras3":  `import keras` (Keras 3, TensorFlow backend)
  - impl "tfkeras": `import tf_keras as keras` (needs TF_USE_LEGACY_KERAS=1 in the environment)
and registers the custom objects the fixtures use (CustomDense, custom_loss), so that
every process that loads a fixture can resolve them through the global registry.
"""

import json
import os
import sys
import zipfile
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

IMPLS = ("keras3", "tfkeras")


def impl_from_env():
    return "tfkeras" if os.environ.get("TF_USE_LEGACY_KERAS") == "1" else "keras3"


def import_keras(impl):
    """Returns the keras module for `impl`. Fails with a clear message on a mismatched env."""
    if impl not in IMPLS:
        raise SystemExit(f"unknown impl {impl!r}; expected one of {IMPLS}")
    if impl == "tfkeras" and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise SystemExit("impl tfkeras needs TF_USE_LEGACY_KERAS=1 in the environment")
    if impl == "keras3" and os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        raise SystemExit("impl keras3 must run without TF_USE_LEGACY_KERAS=1")
    import tensorflow as tf  # noqa: F401  (import first so both impls see the same TF)

    if impl == "tfkeras":
        import tf_keras as keras
    else:
        import keras
    return keras


def safe_mode_scope(keras, impl, safe_mode):
    """Context manager that sets (un)safe deserialization for everything inside it."""
    if impl == "tfkeras":
        from tf_keras.src.saving import serialization_lib
    else:
        from keras.src.saving import serialization_lib
    return serialization_lib.SafeModeScope(safe_mode)


_REGISTERED = {}


def register_custom_objects(keras, impl):
    """Defines and registers CustomDense (my_custom_layers>CustomDense) and
    custom_loss (my_custom_losses>custom_loss). Idempotent."""
    if _REGISTERED:
        return _REGISTERED

    if impl == "tfkeras":
        import tensorflow as tf

        def _matmul(a, b):
            return tf.matmul(a, b)

        def _mean_sq(a, b):
            return tf.reduce_mean(tf.square(a - b), axis=-1)

    else:
        ops = keras.ops

        def _matmul(a, b):
            return ops.matmul(a, b)

        def _mean_sq(a, b):
            return ops.mean(ops.square(a - b), axis=-1)

    @keras.saving.register_keras_serializable(package="my_custom_layers")
    class CustomDense(keras.layers.Layer):
        """x @ w + b with explicitly named weights "w" and "b"."""

        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            input_dim = int(input_shape[-1])
            self.w = self.add_weight(
                name="w", shape=(input_dim, self.units), initializer="random_normal", trainable=True
            )
            self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros", trainable=True)
            super().build(input_shape)

        def call(self, inputs):
            return _matmul(inputs, self.w) + self.b

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    @keras.saving.register_keras_serializable(package="my_custom_losses")
    def custom_loss(y_true, y_pred):
        return _mean_sq(y_true, y_pred) * 0.5

    _REGISTERED.update({"CustomDense": CustomDense, "custom_loss": custom_loss})
    return _REGISTERED


def versions(keras, impl):
    import h5py
    import numpy as np
    import tensorflow as tf

    return {
        "impl": impl,
        "keras": keras.__version__,
        "backend": "tensorflow",
        "python": "%d.%d.%d" % sys.version_info[:3],
        "tensorflow": tf.__version__,
        "h5py": h5py.__version__,
        "numpy": np.__version__,
    }


def shape_list(shape):
    if shape is None:
        return None
    if hasattr(shape, "as_list"):
        try:
            return shape.as_list()
        except ValueError:
            return None
    return [None if d is None else int(d) for d in shape]


def dtype_name(dtype):
    if hasattr(dtype, "name") and not isinstance(dtype, str):
        return dtype.name
    return str(dtype)


def h5_datasets_of(h5file_or_path):
    """Every dataset in an HDF5 file, in h5py visititems order (alphabetical per group)."""
    import h5py

    out = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            entry = {"path": name, "shape": [int(d) for d in obj.shape], "dtype": obj.dtype.name}
            attrs = {}
            for k, v in obj.attrs.items():
                if isinstance(v, bytes):
                    v = v.decode("utf-8", "replace")
                elif hasattr(v, "tolist"):
                    v = v.tolist()
                attrs[k] = v
            if attrs:
                entry["attrs"] = attrs
            out.append(entry)

    if isinstance(h5file_or_path, (str, os.PathLike)):
        with h5py.File(h5file_or_path, "r") as f:
            f.visititems(visit)
    else:
        h5file_or_path.visititems(visit)
    return out


def h5_in_keras_zip(path):
    """Datasets of model.weights.h5 inside a .keras archive."""
    import h5py
    import io

    with zipfile.ZipFile(path) as zf:
        data = zf.read("model.weights.h5")
    with h5py.File(io.BytesIO(data), "r") as f:
        return h5_datasets_of(f)


def flatten_outputs(pred):
    """Model predictions -> list of numpy arrays (dict outputs sorted by key, like keras.tree)."""
    import numpy as np

    if isinstance(pred, dict):
        return [np.asarray(pred[k]) for k in sorted(pred)]
    if isinstance(pred, (list, tuple)):
        out = []
        for p in pred:
            out.extend(flatten_outputs(p))
        return out
    return [np.asarray(pred)]


def compare(expected, got, rtol, atol):
    """Returns (ok, max_abs_diff, error)."""
    import numpy as np

    if len(expected) != len(got):
        return False, None, f"output count differs: expected {len(expected)}, got {len(got)}"
    worst = 0.0
    for i, (e, g) in enumerate(zip(expected, got)):
        if tuple(e.shape) != tuple(g.shape):
            return False, None, f"out_{i} shape differs: expected {list(e.shape)}, got {list(g.shape)}"
        e64 = e.astype(np.float64)
        g64 = g.astype(np.float64)
        if e64.size:
            d = float(np.max(np.abs(e64 - g64)))
            if not np.isfinite(d):
                d = float("inf") if not np.array_equal(e64, g64, equal_nan=True) else 0.0
            worst = max(worst, d)
        if not np.allclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True):
            return False, worst, f"out_{i} differs beyond rtol={rtol} atol={atol}"
    return True, worst, None


def dump_json(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, sort_keys=True, indent=1)
        f.write("\n")


def tmpdir():
    return tempfile.mkdtemp(prefix="strata-oracle-")


def weight_id_map(model):
    """id(variable) -> top-level layer name."""
    m = {}
    for layer in model.layers:
        for w in layer.weights:
            m.setdefault(id(w), layer.name)
    return m


def layer_output_shape(layer):
    nodes = getattr(layer, "_inbound_nodes", None) or getattr(layer, "inbound_nodes", None) or []
    if not nodes:
        return None
    node = nodes[0]
    import tensorflow as tf

    tensors = tf.nest.flatten(node.output_tensors if hasattr(node, "output_tensors") else node.outputs)
    shapes = [shape_list(t.shape) for t in tensors]
    return shapes[0] if len(shapes) == 1 else shapes


def tensor_producer_name(t):
    hist = t._keras_history
    op = getattr(hist, "operation", None) or getattr(hist, "layer", None) or hist[0]
    return op.name


def describe_model(impl, model):
    import numpy as np

    owner = weight_id_map(model)
    inputs = [
        {"name": tensor_producer_name(t), "shape": shape_list(t.shape), "dtype": dtype_name(t.dtype)}
        for t in model.inputs
    ]
    outputs = [
        {"name": tensor_producer_name(t), "shape": shape_list(t.shape), "dtype": dtype_name(t.dtype)}
        for t in model.outputs
    ]
    layers = [
        {
            "name": layer.name,
            "class_name": layer.__class__.__name__,
            "params": int(layer.count_params()),
            "output_shape": layer_output_shape(layer),
        }
        for layer in model.layers
    ]
    weights = []
    for w in model.weights:
        name = w.path if impl == "keras3" else w.name
        weights.append(
            {
                "layer": owner.get(id(w)),
                "name": name,
                "shape": shape_list(w.shape),
                "dtype": dtype_name(w.dtype),
                "trainable": bool(w.trainable),
            }
        )
    trainable = int(sum(int(np.prod(shape_list(w.shape))) for w in model.trainable_weights))
    non_trainable = int(sum(int(np.prod(shape_list(w.shape))) for w in model.non_trainable_weights))
    return dict(
        inputs=inputs,
        outputs=outputs,
        layers=layers,
        weights=weights,
        total_params=int(model.count_params()),
        trainable_params=trainable,
        non_trainable_params=non_trainable,
    )


def scramble_weights(model, seed=987654321):
    """Overwrite every weight with noise, so that a later load_weights() that silently skips
    a variable shows up as a prediction mismatch instead of keeping the right value."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vals = model.get_weights()
    model.set_weights([(rng.standard_normal(v.shape) + 3.0).astype(v.dtype) for v in vals])
