// Run Python code under real Pyodide in Node, offline.
//
// Usage: node run.mjs SPEC.json
// SPEC: {indexURL, lockFileURL, packages: [lock names], wheels: [paths],
//        code, out}
// - indexURL: the npm-installed pyodide folder (core files + its `ws` dep);
// - lockFileURL: a lock written by ipy_lazycache.offline_pyodide, whose
//   folder holds the wheels, so loadPackage never reaches for the CDN;
// - wheels: local wheel files, installed with micropip (dependencies are
//   taken from the lock, like piplite does in the browser);
// - code: run with runPythonAsync (top-level await allowed). If it sets a
//   global RESULT, its json.dumps goes into the result.
// Writes {stdout, stderr, setup, result, error} as JSON to `out`; exits 1 on error.
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { pathToFileURL } from "node:url";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = { stdout: "", stderr: "", setup: "", result: null, error: null };
const done = (code) => {
  writeFileSync(spec.out, JSON.stringify(report));
  process.exit(code);
};

try {
  const { loadPyodide } = await import(
    pathToFileURL(spec.indexURL + "pyodide.mjs").href
  );
  const py = await loadPyodide({
    indexURL: spec.indexURL,
    lockFileURL: spec.lockFileURL,
    stdout: (s) => (report.stdout += s + "\n"),
    stderr: (s) => (report.stderr += s + "\n"),
  });
  const quiet = { messageCallback: () => {}, errorCallback: (m) => (report.stderr += m + "\n") };
  await py.loadPackage(["micropip", ...spec.packages], quiet);
  if (spec.wheels.length) {
    py.FS.mkdirTree("/tmp/wheels");
    const urls = spec.wheels.map((w) => {
      const dest = "/tmp/wheels/" + basename(w);
      py.FS.writeFile(dest, readFileSync(w));
      return "emfs:" + dest;
    });
    py.globals.set("_wheel_urls", py.toPy(urls));
    // index_urls=[]: a dependency missing from the lock fails here instead
    // of being fetched from PyPI (as the browser with disablePyPIFallback).
    await py.runPythonAsync(
      "import micropip\nawait micropip.install(_wheel_urls, index_urls=[])\n" +
        "del _wheel_urls",
    );
  }
  report.setup = report.stdout + report.stderr; // keep set-up chatter apart
  report.stdout = report.stderr = "";
  await py.runPythonAsync(spec.code);
  report.result = py.runPython(
    "import json as _j; _j.dumps(globals().get('RESULT'))",
  );
  done(0);
} catch (err) {
  report.error = String(err && err.message ? err.message : err);
  done(1);
}
