"""Many interop checks in one process (TensorFlow imports once).

    python check_batch.py --impl keras3|tfkeras JOBS.json

JOBS.json is a list of objects with the keys of check_load.py's options:
{"model": F} or {"weights": W, "arch": A}, plus "io" (required), "unsafe" (bool), "rtol", "atol".
Prints one JSON line per job, in order: {"ok", "max_abs_diff", "error"}. Exit 0 always (the
caller reads the lines); 2 when the jobs file cannot be read.
"""

import argparse
import json
import os
import sys
import types


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=("keras3", "tfkeras"), required=True)
    ap.add_argument("jobs")
    a = ap.parse_args(argv)
    if a.impl == "tfkeras":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    else:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    try:
        with open(a.jobs) as f:
            jobs = json.load(f)
    except Exception as e:  # noqa: BLE001
        print(f"cannot read {a.jobs}: {e}", file=sys.stderr)
        return 2
    real_stdout = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import check_load
    import oracle_common as oc

    K = oc.import_keras(a.impl)
    for job in jobs:
        args = types.SimpleNamespace(
            model=job.get("model"), weights=job.get("weights"), arch=job.get("arch"),
            io=job.get("io"), unsafe=bool(job.get("unsafe")), dump=False,
        )
        result = {"ok": False, "max_abs_diff": None, "error": None}
        try:
            model = check_load.load(K, oc, a.impl, args)
            expected, got = check_load.predict(oc, model, args.io)
            ok, diff, err = oc.compare(expected, got, job.get("rtol", 1e-5), job.get("atol", 1e-6))
            result.update(ok=ok, max_abs_diff=diff, error=err)
        except Exception as e:  # noqa: BLE001
            result.update(ok=False, error=check_load._err(e))
        real_stdout.write(json.dumps(result, sort_keys=True) + "\n")
        real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
