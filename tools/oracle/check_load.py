"""Interop checker: can Keras load FILE and reproduce the outputs in io.npz?

  python check_load.py --impl keras3|tfkeras --model FILE --io io.npz [--rtol 1e-5 --atol 1e-6] [--unsafe]
  python check_load.py --impl keras3|tfkeras --weights WFILE --arch ARCHFILE --io io.npz [...]
  python check_load.py --impl keras3|tfkeras --model FILE --dump [--io io.npz]

--model   a full model: .keras archive, legacy .h5, or a model.json (weights then come from --weights).
--weights a weights file (.weights.h5, or a legacy .h5 weights file); the model is built from --arch
          (a .keras / .h5 full model, or a .json from model.to_json()) and load_weights(WFILE) is applied.
--io      an npz holding in_0..in_{n-1} and out_0..out_{m-1}; outputs are compared with
          numpy.allclose(got, expected, rtol, atol).
--unsafe  load with safe_mode=False (needed for Lambda layers); safe mode otherwise.
--dump    print a JSON description of the loaded model (layers, classes, weight names/shapes).

Check mode prints exactly one JSON line on stdout: {"error": str|null, "max_abs_diff": float|null, "ok": bool}
and exits 0 when ok, 1 on a mismatch or any error, 2 on bad usage. Everything else goes to stderr.
The environment is set up here (TF_USE_LEGACY_KERAS for --impl tfkeras), so no variables are needed.
"""

import argparse
import json
import os
import re
import sys
import traceback


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=("keras3", "tfkeras"), required=True)
    ap.add_argument("--model", help="full model file (.keras, .h5) or model.json")
    ap.add_argument("--weights", help="weights file to load into the model built from --arch (or --model)")
    ap.add_argument("--arch", help="architecture source for --weights: .keras, .h5 or .json")
    ap.add_argument("--io", help="npz with in_* and out_*")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-6)
    ap.add_argument("--unsafe", action="store_true", help="safe_mode=False (Lambda layers)")
    ap.add_argument("--dump", action="store_true", help="print a JSON description of the loaded model")
    args = ap.parse_args(argv)
    if args.weights and not (args.arch or args.model):
        ap.error("--weights needs --arch (or --model) to build the model from")
    if not args.weights and not args.model:
        ap.error("give --model FILE, or --weights WFILE --arch ARCHFILE")
    if args.model and args.arch:
        ap.error("give either --model or --arch, not both")
    if not args.dump and not args.io:
        ap.error("--io is required unless --dump is given")
    return args


def _err(e):
    # Keras colours some messages with ANSI escapes; strip them.
    msg = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(e).__name__}: {e}")
    # Object addresses ("<function dot at 0x7f...>") change every run.
    msg = re.sub(r" at 0x[0-9a-fA-F]+", " at 0x...", msg)
    msg = re.sub(r"(shared_object_id['\"]?:\s*)\d+", r"\1<id>", msg)
    return msg if len(msg) <= 4000 else msg[:4000] + "...[truncated]"


def load(K, oc, impl, args):
    custom_objects = oc.register_custom_objects(K, impl)
    safe = not args.unsafe

    def load_full(path):
        if path.endswith(".json"):
            with open(path) as f:
                js = f.read()
            with oc.safe_mode_scope(K, impl, safe):
                return K.models.model_from_json(js, custom_objects=custom_objects)
        if impl == "keras3":
            return K.models.load_model(path, custom_objects=custom_objects, compile=False, safe_mode=safe)
        with oc.safe_mode_scope(K, impl, safe):
            return K.models.load_model(path, custom_objects=custom_objects, compile=False, safe_mode=safe)

    src = args.arch or args.model
    model = load_full(src)
    if args.weights:
        # The architecture file may carry weights of its own; make sure only WFILE's count.
        oc.scramble_weights(model)
        model.load_weights(args.weights)
    return model


def predict(oc, model, io_path):
    import numpy as np

    with np.load(io_path, allow_pickle=False) as z:
        names = set(z.files)
        n_in = sum(1 for k in names if k.startswith("in_"))
        n_out = sum(1 for k in names if k.startswith("out_"))
        for i in range(n_in):
            if f"in_{i}" not in names:
                raise ValueError(f"{io_path}: inputs must be named in_0..in_{n_in - 1}; in_{i} is missing")
        for i in range(n_out):
            if f"out_{i}" not in names:
                raise ValueError(f"{io_path}: outputs must be named out_0..out_{n_out - 1}; out_{i} is missing")
        ins = [z[f"in_{i}"] for i in range(n_in)]
        outs = [z[f"out_{i}"] for i in range(n_out)]
    if not ins:
        raise ValueError(f"{io_path}: no in_0 array")
    feed = ins if len(ins) > 1 else ins[0]
    got = oc.flatten_outputs(model.predict(feed, batch_size=len(ins[0]), verbose=0))
    return outs, got


def main(argv):
    args = parse_args(argv)
    # Select the implementation before TensorFlow is imported.
    if args.impl == "tfkeras":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    else:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)

    # Keep stdout clean for the result line: anything TF/Keras prints goes to stderr.
    real_stdout = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)

    result = {"ok": False, "max_abs_diff": None, "error": None}
    dump = None
    try:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import oracle_common as oc

        K = oc.import_keras(args.impl)
        model = load(K, oc, args.impl, args)
        if args.dump:
            dump = oc.describe_model(args.impl, model)
            dump["impl"] = args.impl
            dump["keras"] = K.__version__
            dump["class_name"] = model.__class__.__name__
            dump["name"] = model.name
        if args.io:
            expected, got = predict(oc, model, args.io)
            ok, diff, err = oc.compare(expected, got, args.rtol, args.atol)
            result.update(ok=ok, max_abs_diff=diff, error=err)
        else:
            result.update(ok=True)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        result.update(ok=False, error=_err(e))
    sys.stderr.flush()

    if dump is not None:
        dump["check"] = result
        real_stdout.write(json.dumps(dump, sort_keys=True, indent=1) + "\n")
    else:
        real_stdout.write(json.dumps(result, sort_keys=True) + "\n")
    real_stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
