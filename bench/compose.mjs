// Composes the benchmark subgraphs (bench/schema/*.graphql) into
// bench/supergraph.graphql with @theguild/federation-composition, the same
// composer the project uses for its own supergraph:
//   node bench/compose.mjs [--check]
// The routing URLs are the runner's fixed subgraph ports on 127.0.0.1.
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// Resolve the packages from the peers' install, or else from the project's
// own schema tooling (schema/node_modules), whichever is there.
import { existsSync } from "node:fs";
const base = existsSync(join(here, ".peers", "node", "node_modules", "@theguild"))
  ? join(here, ".peers", "node", "package.json")
  : join(here, "..", "schema", "package.json");
const require = createRequire(base);
const { parse } = require("graphql");
const { composeServices } = require("@theguild/federation-composition");

const check = process.argv.includes("--check");
const subgraphs = [
  ["accounts", 4201],
  ["inventory", 4202],
  ["products", 4203],
  ["reviews", 4204],
];

const result = composeServices(
  subgraphs.map(([name, port]) => ({
    name,
    url: `http://127.0.0.1:${port}/graphql`,
    typeDefs: parse(readFileSync(join(here, "schema", `${name}.graphql`), "utf8")),
  })),
);
if (result.errors && result.errors.length > 0) {
  for (const error of result.errors) console.error(`composition error: ${error.message}`);
  process.exit(1);
}
const supergraph = result.supergraphSdl.trimEnd() + "\n";
const target = join(here, "supergraph.graphql");
if (check) {
  const current = (() => {
    try {
      return readFileSync(target, "utf8");
    } catch {
      return "";
    }
  })();
  if (current !== supergraph) {
    console.error("bench/supergraph.graphql is out of date: run node bench/compose.mjs and commit it");
    process.exit(1);
  }
  console.log("bench/supergraph.graphql matches the subgraphs");
} else {
  writeFileSync(target, supergraph);
  console.log(`wrote ${target}`);
}
