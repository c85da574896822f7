"""keras.applications parity models for crates/layers/tests/apps_parity.rs.

    gen_apps.py OUT_ROOT [NAME ...]      # default: every model below

For each model: build it with weights=None (fixed seed), give biases and BatchNormalization
statistics non-default values (as gen_engine.py does), run Keras on a small fixed batch and write
OUT_ROOT/<name>/{model.keras, io.npz (in_0 / out_0), meta.json}. The files are 10-100 MB, so they
live in the oracle cache (~/.cache/strata/oracle/apps/), not in the repository.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# name -> (constructor, input shape, input range); logits out (classifier_activation=None) so the
# comparison sees the raw numbers, not a near-uniform softmax.
APPS = {
    "mobilenetv2": ("MobileNetV2", (96, 96, 3), (-1.0, 1.0), dict(alpha=1.0)),
    "resnet50": ("ResNet50", (64, 64, 3), (-2.0, 2.0), {}),
    "efficientnetb0": ("EfficientNetB0", (64, 64, 3), (0.0, 255.0), {}),
}
BATCH = 2
CLASSES = 5


def gen(root, name):
    import numpy as np
    import keras
    import gen_fixtures as gf

    ctor, shape, (lo, hi), extra = APPS[name]
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, ctor)(
        input_shape=shape, weights=None, classes=CLASSES, classifier_activation=None, **extra
    )
    gf.perturb_weights(model, np.random.default_rng(7))
    x = np.random.default_rng(1).uniform(lo, hi, (BATCH,) + shape).astype("float32")
    y = np.asarray(model.predict(x, batch_size=BATCH, verbose=0), dtype="float32")
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    model.save(os.path.join(d, "model.keras"))
    # the saved file must reproduce the outputs before it counts as written
    m2 = keras.models.load_model(os.path.join(d, "model.keras"), compile=False)
    y2 = np.asarray(m2.predict(x, batch_size=BATCH, verbose=0))
    if not np.allclose(y, y2, rtol=1e-5, atol=1e-6):
        raise SystemExit(f"{name}: reloaded model differs by {np.max(np.abs(y - y2))}")
    np.savez(os.path.join(d, "io.npz"), in_0=x, out_0=y)
    classes = sorted({l.__class__.__name__ for l in model.layers})
    meta = dict(
        model=ctor, keras=keras.__version__, backend=keras.backend.backend(), input_shape=list(shape),
        batch=BATCH, classes=CLASSES, params=int(model.count_params()), layer_classes=classes,
        output_abs_max=float(np.max(np.abs(y))),
    )
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{name}: {meta['params']} parameters, layers {classes} -> {d}", file=sys.stderr)


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    names = sys.argv[2:] or list(APPS)
    for n in names:
        if n not in APPS:
            raise SystemExit(f"unknown model {n}; known: {sorted(APPS)}")
        gen(sys.argv[1], n)


if __name__ == "__main__":
    main()
