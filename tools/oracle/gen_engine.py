"""Generates the engine's layer-parity fixtures (see tools/oracle/README.md, "engine fixtures").

    python gen_engine.py --impl keras3  [--family conv] [--case conv1d_causal ...]
    TF_USE_LEGACY_KERAS=1 python gen_engine.py --impl tfkeras [--family ...]

Cases live in tools/oracle/engine/<family>.py as `case_<name>(K, impl, rng)` functions returning
dict(model=, inputs=[np arrays], description=, [impls=("keras3", "tfkeras")], [rtol=, atol=]).
A case runs under every impl in `impls` (default: keras3 only). For each it writes
fixtures/engine/<impl>/<family>/<case>/: model.keras (both impls) and model.h5 (tfkeras, and
keras3 when `h5=True`), io.npz (in_i / out_i: the inputs and what Keras computed) and meta.json.
Every written file is reloaded and must reproduce the outputs before the case counts as written.
Run it through gen_engine.sh, which picks the oracle venv.
"""

import argparse
import importlib
import json
import os
import shutil
import sys
import traceback
import zlib

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import oracle_common as oc  # noqa: E402

SEED = 1234
FAMILIES_DIR = os.path.join(here, "engine")


def families():
    return sorted(f[:-3] for f in os.listdir(FAMILIES_DIR) if f.endswith(".py") and not f.startswith("_"))


def cases_of(family):
    mod = importlib.import_module(f"engine.{family}")
    return {n[len("case_"):]: f for n, f in vars(mod).items() if n.startswith("case_") and callable(f)}


def run_case(K, impl, family, name, fn, out_root, versions):
    import numpy as np
    import gen_fixtures as gf

    K.utils.set_random_seed(SEED)
    rng = np.random.default_rng(zlib.crc32(f"{family}/{name}".encode()))
    spec = fn(K, impl, rng)
    model = spec["model"]
    inputs = spec["inputs"]
    if spec.get("perturb", True):
        gf.perturb_weights(model, np.random.default_rng(zlib.crc32(f"w:{family}/{name}".encode())))
    feed = inputs if len(inputs) > 1 else inputs[0]
    bs = len(inputs[0])
    expected = oc.flatten_outputs(model.predict(feed, batch_size=bs, verbose=0))

    case_dir = os.path.join(out_root, impl, family, name)
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)
    files = ["model.keras"]
    if impl == "tfkeras" or spec.get("h5"):
        files.append("model.h5")
    for fname in files:
        path = os.path.join(case_dir, fname)
        model.save(path)
        with oc.safe_mode_scope(K, impl, False):
            kw = {"compile": False}
            if impl == "keras3" and fname.endswith(".keras"):
                kw["safe_mode"] = False
            m2 = K.models.load_model(path, **kw)
        got = oc.flatten_outputs(m2.predict(feed, batch_size=bs, verbose=0))
        ok, worst, err = oc.compare(expected, got, 1e-6, 1e-7)
        if not ok:
            raise RuntimeError(f"{fname}: reloaded model differs from the original: {err} (max {worst})")
    np.savez(
        os.path.join(case_dir, "io.npz"),
        **{f"in_{i}": x for i, x in enumerate(inputs)},
        **{f"out_{i}": y for i, y in enumerate(expected)},
    )
    meta = {
        "case": f"{family}/{name}",
        "impl": impl,
        "versions": versions,
        "description": spec.get("description", ""),
        "files": files,
        "classes": sorted({l.__class__.__name__ for l in gf._all_layers(model)}),
    }
    for k in ("rtol", "atol"):
        if k in spec:
            meta[k] = spec[k]
    oc.dump_json(meta, os.path.join(case_dir, "meta.json"))
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", choices=oc.IMPLS, required=True)
    ap.add_argument("--out", default="fixtures/engine")
    ap.add_argument("--family", action="append", help="only these families (repeatable)")
    ap.add_argument("--case", action="append", help="only these cases (repeatable)")
    args = ap.parse_args()

    K = oc.import_keras(args.impl)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    versions = oc.versions(K, args.impl)

    failures = 0
    for fam in args.family or families():
        cases = cases_of(fam)
        for name, fn in cases.items():
            if args.case and name not in args.case:
                continue
            probe = getattr(fn, "impls", None)
            try:
                spec_impls = probe or ("keras3",)
                if args.impl not in spec_impls:
                    continue
                files = run_case(K, args.impl, fam, name, fn, args.out, versions)
                print(f"[{args.impl}] {fam}/{name}: ok ({', '.join(files)})", flush=True)
            except Exception:  # noqa: BLE001
                failures += 1
                print(f"[{args.impl}] {fam}/{name}: CASE FAILED", file=sys.stderr, flush=True)
                traceback.print_exc()
        if not args.case:
            # drop case folders that no longer exist
            d = os.path.join(args.out, args.impl, fam)
            if os.path.isdir(d):
                for c in os.listdir(d):
                    fn = cases.get(c)
                    if fn is None or args.impl not in (getattr(fn, "impls", None) or ("keras3",)):
                        shutil.rmtree(os.path.join(d, c))
    if failures:
        raise SystemExit(f"{failures} case(s) failed (tracebacks above)")


if __name__ == "__main__":
    main()
