// Builds persisted-documents.json: every operation the example app sends, as
// an Apollo persisted-query manifest, for the gateway's trusted documents
// (GATEWAY_TRUSTED_DOCUMENTS; with GATEWAY_TRUSTED_DOCUMENTS_ONLY the gateway
// runs nothing else). Each id is the SHA-256 of the document's text, so the
// app keeps sending its documents as they are and the gateway finds them.
//
//   node scripts/build-manifest.mjs          write the manifest
//   node scripts/build-manifest.mjs --check  fail if it is out of date

import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { SESSION_OPERATIONS } from '../gatehouse-client.js';
import * as appOperations from '../operations.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const manifestPath = path.resolve(here, '../persisted-documents.json');

/** One manifest entry for a document holding one named operation. */
function entry(body) {
  const match = /^\s*(query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)/.exec(body);
  if (!match) throw new Error(`every operation of the app must be named: ${body.slice(0, 60)}`);
  return { id: createHash('sha256').update(body).digest('hex'), name: match[2], type: match[1], body };
}

/** The manifest's text, operations sorted by name. */
export function manifestText() {
  const bodies = [...SESSION_OPERATIONS, ...Object.values(appOperations).filter((v) => typeof v === 'string')];
  const operations = bodies.map(entry).sort((a, b) => a.name.localeCompare(b.name));
  const names = new Set(operations.map((o) => o.name));
  if (names.size !== operations.length) throw new Error('two operations of the app have the same name');
  return `${JSON.stringify({ format: 'apollo-persisted-query-manifest', version: 1, operations }, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = manifestText();
  if (process.argv.includes('--check')) {
    const current = await readFile(manifestPath, 'utf8').catch(() => '');
    if (current !== text) {
      console.error(`${manifestPath} is out of date: run \`npm run manifest\` in examples/spa`);
      process.exit(1);
    }
  } else {
    await writeFile(manifestPath, text);
    console.log(`wrote ${manifestPath}`);
  }
}
