"""Cross-implementation load matrix: can IMPL read the files another generation wrote?

    python interop.py --impl tfkeras --fixtures fixtures --from keras3
    TF_USE_LEGACY_KERAS is set here from --impl.

For every case folder in fixtures/<from>/, each file is loaded with IMPL and the predictions are
compared with that folder's io.npz (same rules as check_load.py). The results are stored in the
case's meta.json under "cross_load": {IMPL: {file: {"ok", "max_abs_diff", "error"}}}.
  model.keras / model.h5       load_model(file)
  model.json                   model_from_json(file), then load_weights(<from>/<case>/model.weights.h5)
  model.weights.h5, weights.h5 model_from_json(fixtures/<IMPL's generation>/<case>/model.json), then load_weights(file)
"""

import argparse
import json
import os
import sys
import types

GEN_OF_IMPL = {"keras3": "keras3", "tfkeras": "tfkeras"}
FILES = ("model.keras", "model.h5", "model.json", "model.weights.h5", "weights.h5")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=("keras3", "tfkeras"), required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--from", dest="src", required=True, help="generation folder to read, e.g. keras3")
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-6)
    args = ap.parse_args()
    if args.impl == "tfkeras":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    else:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import check_load
    import oracle_common as oc

    K = oc.import_keras(args.impl)
    src_root = os.path.join(args.fixtures, args.src)
    own_root = os.path.join(args.fixtures, GEN_OF_IMPL[args.impl])

    for case in sorted(os.listdir(src_root)):
        cdir = os.path.join(src_root, case)
        meta_path = os.path.join(cdir, "meta.json")
        if not os.path.isfile(meta_path):
            continue
        with open(meta_path) as f:
            meta = json.load(f)
        unsafe = bool(meta.get("unsafe"))
        io_path = os.path.join(cdir, "io.npz")
        results = {}
        for fname in FILES:
            path = os.path.join(cdir, fname)
            if not os.path.isfile(path):
                continue
            ns = types.SimpleNamespace(model=None, weights=None, arch=None, unsafe=unsafe)
            if fname in ("model.keras", "model.h5"):
                ns.model = path
            elif fname == "model.json":
                ns.arch = path
                ns.weights = os.path.join(cdir, "model.weights.h5")
            else:
                ns.arch = os.path.join(own_root, case, "model.json")
                ns.weights = path
            entry = {"ok": False, "max_abs_diff": None, "error": None}
            try:
                for p in (ns.arch, ns.weights):
                    if p is not None and not os.path.isfile(p):
                        raise FileNotFoundError(f"needed {p}, which does not exist")
                model = check_load.load(K, oc, args.impl, ns)
                expected, got = check_load.predict(oc, model, io_path)
                ok, diff, err = oc.compare(expected, got, args.rtol, args.atol)
                entry.update(ok=ok, max_abs_diff=diff, error=err)
            except Exception as e:  # noqa: BLE001
                entry["error"] = check_load._err(e)
            results[fname] = entry
            K.backend.clear_session()
        meta.setdefault("cross_load", {})[args.impl] = results
        oc.dump_json(meta, meta_path)
        bad = [f for f, e in results.items() if not e["ok"]]
        print(f"[{args.impl} reads {args.src}] {case}: " + ("all ok" if not bad else "fails: " + ", ".join(bad)), flush=True)


if __name__ == "__main__":
    main()
