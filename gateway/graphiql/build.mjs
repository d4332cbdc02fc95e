// Bundles the gateway's GraphiQL page into one folder of static files that
// the gateway embeds in its binary (gateway/build.rs runs this after `npm ci`).
//
//   node build.mjs OUT_DIR [--client PATH]
//
// OUT_DIR receives, all with content hashes in their names so that they can
// be cached for good:
//   graphiql-<hash>.js / .css    the page's module and its stylesheet
//   chunk-<hash>.js              parts of it loaded on demand (the editor)
//   <label>.worker-<hash>.js     the Monaco editor's web workers
//   manifest.txt                 which file is which, read by build.rs
//
// Nothing in the output loads anything from another origin: no CDN, no
// remote fonts (GraphiQL's stylesheet carries its fonts as data: URLs).
// `--client` names examples/spa/gatehouse-client.js when this folder was
// copied elsewhere (build.rs builds a copy under OUT_DIR).

import { readdir, readFile, rm, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const args = { out: null, client: path.resolve(here, '../../examples/spa/gatehouse-client.js') };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--client') args.client = path.resolve(argv[(i += 1)] ?? '');
    else if (!args.out) args.out = path.resolve(argv[i]);
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!args.out) throw new Error('usage: node build.mjs OUT_DIR [--client path/to/gatehouse-client.js]');
  return args;
}

// Monaco's workers: the label Monaco asks for, and the module that serves it.
const WORKERS = {
  editor: 'monaco-editor/esm/vs/editor/editor.worker.js',
  json: 'monaco-editor/esm/vs/language/json/json.worker.js',
  graphql: 'monaco-graphql/esm/graphql.worker.js',
};

const common = {
  bundle: true,
  minify: true,
  legalComments: 'none',
  target: 'es2022',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  write: true,
};

/** The output an entry point ended up in (its file name, and its stylesheet's), by source path. */
function outputOf(metafile, entryPoint) {
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (output.entryPoint && output.entryPoint.endsWith(entryPoint)) {
      return { file: path.basename(file), css: output.cssBundle && path.basename(output.cssBundle) };
    }
  }
  throw new Error(`esbuild produced no output for ${entryPoint}`);
}

// Monaco's own modules import their stylesheets one by one; GraphiQL's
// stylesheet already holds all of them, so these imports add nothing.
const skipMonacoCss = {
  name: 'skip-monaco-css',
  setup(build) {
    build.onLoad({ filter: /[\\/]monaco-editor[\\/]esm[\\/].*\.css$/ }, () => ({ contents: '', loader: 'css' }));
  },
};

async function buildWorkers(out) {
  const result = await esbuild.build({
    ...common,
    entryPoints: Object.fromEntries(Object.entries(WORKERS).map(([label, module]) => [`${label}.worker`, module])),
    format: 'iife',
    entryNames: '[name]-[hash]',
    outdir: out,
    plugins: [skipMonacoCss],
  });
  return Object.fromEntries(Object.entries(WORKERS).map(([label, module]) => [label, outputOf(result.metafile, module).file]));
}

async function buildPage(out, client, workers) {
  const result = await esbuild.build({
    ...common,
    entryPoints: { graphiql: path.join(here, 'src/main.jsx') },
    format: 'esm',
    splitting: true,
    jsx: 'automatic',
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: '[name]-[hash]',
    loader: { '.ttf': 'file', '.woff': 'file', '.woff2': 'file', '.svg': 'file', '.png': 'file' },
    alias: { 'gatehouse-client': client },
    define: { ...common.define, GATEHOUSE_WORKERS: JSON.stringify(workers) },
    outdir: out,
    plugins: [skipMonacoCss],
  });
  const { file, css } = outputOf(result.metafile, 'src/main.jsx');
  if (!css) throw new Error('the page has no stylesheet');
  // esbuild gives a lazily loaded chunk that imports CSS its own stylesheet,
  // which nothing would ever load: they must stay empty (see skipMonacoCss).
  for (const [output, { bytes }] of Object.entries(result.metafile.outputs)) {
    if (!output.endsWith('.css') || path.basename(output) === css) continue;
    if (bytes > 0) throw new Error(`${output}: CSS of a lazily loaded chunk would never be loaded`);
    await rm(path.resolve(output));
  }
  return { script: file, style: css };
}

// A last check of what the gateway will serve: nothing may be fetched from
// another origin, and every name must carry a content hash (the gateway
// serves them as immutable).
async function check(out, files) {
  const remote = [
    /@import\s+(url\()?["']?https?:/i,
    /url\(\s*["']?https?:\/\//i,
    /\bimport\s*\(\s*["']https?:/i,
    /\bfrom\s*["']https?:/i,
    /importScripts\(\s*["']https?:/i,
    /esm\.sh|unpkg\.com|cdn\.jsdelivr\.net|fonts\.(googleapis|gstatic)\.com/i,
  ];
  for (const file of files) {
    if (!/-[A-Z0-9]{8}\.[a-z0-9]+$/.test(file)) throw new Error(`${file} has no content hash in its name`);
    if (!/\.(js|css)$/.test(file)) continue;
    const text = await readFile(path.join(out, file), 'utf8');
    const hit = remote.find((pattern) => pattern.test(text));
    if (hit) throw new Error(`${file} loads something from another origin (${hit})`);
  }
}

async function main() {
  const { out, client } = parseArgs(process.argv.slice(2));
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const workers = await buildWorkers(out);
  const { script, style } = await buildPage(out, client, workers);
  const files = (await readdir(out)).sort();
  await check(out, files);
  const manifest = [`script ${script}`, `style ${style}`, ...files.map((file) => `file ${file}`)];
  await writeFile(path.join(out, 'manifest.txt'), `${manifest.join('\n')}\n`);
  console.log(`GraphiQL bundled into ${out}: ${files.length} files`);
}

main().catch((error) => {
  console.error(error.message ?? error);
  process.exit(1);
});
