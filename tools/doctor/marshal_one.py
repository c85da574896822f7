"""marshal.loads one Lambda blob and call the function on 3.0; prints one JSON line.

Used for the CPython 3.14 reader, which runs inside Pyodide (tools/marshal/run_pyodide.js mounts
the host directory given to it at /out):
  NODE_PATH=<dir>/node_modules node tools/marshal/run_pyodide.js tools/doctor/marshal_one.py fixtures/marshal 3.11/affine.bin
"""
import json, marshal, sys, types

path = sys.argv[1] + "/" + sys.argv[2]
try:
    code = marshal.loads(open(path, "rb").read())
    result = "ok " + repr(types.FunctionType(code, {})(3.0))
except BaseException as e:  # noqa: BLE001 - recording what CPython raised
    text = str(e).strip().splitlines()
    result = "%s: %s" % (type(e).__name__, text[0] if text else "")
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "result": result}))
