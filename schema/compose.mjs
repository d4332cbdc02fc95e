// Composes the subgraphs' SDL (auth.graphql, users.graphql, written by
// `gatehouse schema sdl`) into supergraph.graphql with
// @theguild/federation-composition. With --check it writes nothing and exits
// 1 when the checked-in supergraph differs from a fresh composition.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "graphql";
import { composeServices } from "@theguild/federation-composition";

const here = dirname(fileURLToPath(import.meta.url));
const check = process.argv.includes("--check");
const dir = process.argv.find((a) => a.startsWith("--sdl-dir="))?.slice("--sdl-dir=".length) ?? here;

// Subgraph routing URLs in the supergraph are the development ones; the
// gateway overrides them per deployment (GATEWAY_SUBGRAPH_<NAME>_URL).
const subgraphs = [
  { name: "auth", file: "auth.graphql", url: "http://localhost:4001/graphql" },
  { name: "users", file: "users.graphql", url: "http://localhost:4002/graphql" },
];

const result = composeServices(
  subgraphs.map(({ name, file, url }) => ({ name, url, typeDefs: parse(readFileSync(join(dir, file), "utf8")) })),
);
if (result.errors && result.errors.length > 0) {
  for (const error of result.errors) console.error(`composition error: ${error.message}`);
  process.exit(1);
}

const supergraph = result.supergraphSdl.trimEnd() + "\n";
const target = join(here, "supergraph.graphql");
if (check) {
  let current = "";
  try {
    current = readFileSync(target, "utf8");
  } catch {}
  if (current !== supergraph) {
    console.error("schema/supergraph.graphql is out of date: run schema/compose.sh and commit the result");
    process.exit(1);
  }
  console.log("supergraph.graphql matches the subgraphs");
} else {
  writeFileSync(target, supergraph);
  console.log(`wrote ${target}`);
}
