// Runs a Python script inside Pyodide (CPython compiled to WebAssembly) under node, with one
// host directory mounted read-write at /out. Used to get CPython 3.14 output where no native
// 3.14 is installed.
//
//   npm install pyodide@314.0.7         (in some directory D)
//   NODE_PATH=D/node_modules node tools/marshal/run_pyodide.js script.py HOSTDIR [args...]
//
// The script sees sys.argv = [script.py, "/out", args...].
const fs = require("fs");
const path = require("path");
const { loadPyodide } = require("pyodide");

async function main() {
  const [script, hostDir, ...rest] = process.argv.slice(2);
  if (!script || !hostDir) {
    console.error("usage: run_pyodide.js script.py HOSTDIR [args...]");
    process.exit(2);
  }
  fs.mkdirSync(hostDir, { recursive: true });
  const py = await loadPyodide();
  py.FS.mkdirTree("/out");
  py.FS.mount(py.FS.filesystems.NODEFS, { root: path.resolve(hostDir) }, "/out");
  const src = fs.readFileSync(script, "utf8");
  py.globals.set("__argv", py.toPy([path.basename(script), "/out", ...rest]));
  py.runPython("import sys; sys.argv = list(__argv)");
  py.runPython(src, { globals: py.toPy({ __name__: "__main__" }) });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
