import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES } from '../src/core/errors.js';
import { DEFLATE_OPTIONS } from '../src/node/options.js';
import { withOptionTables } from './helpers/option-docs.js';

const root = new URL('../../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

test('docs/reference.md lists every error code, and only real ones', () => {
  const doc = read('docs/reference.md');
  const start = doc.indexOf('<!-- error-codes:start -->');
  const end = doc.indexOf('<!-- error-codes:end -->');
  assert.ok(start > 0 && end > start, 'the error table markers are present');
  const table = doc.slice(start, end);
  const listed = new Set([...table.matchAll(/`(SWITCHYARD_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]));
  const missing = Object.keys(ERROR_CODES).filter((code) => !listed.has(code));
  assert.deepEqual(missing, [], 'codes missing from docs/reference.md');
  const unknown = [...listed].filter((code) => !(code in ERROR_CODES));
  assert.deepEqual(unknown, [], 'codes in the docs that the library does not have');
});

test('the README starts with the two commands that work on a fresh machine', () => {
  const readme = read('README.md');
  const firstBlock = readme.slice(
    readme.indexOf('```'),
    readme.indexOf('```', readme.indexOf('```') + 3),
  );
  assert.match(firstBlock, /npm ci && npm start/);
  assert.match(firstBlock, /npm test/);
});

test('the option tables of docs/reference.md are the ones generated from the code', () => {
  const doc = read('docs/reference.md');
  // On a difference, `npx tsx scripts/option-tables.ts` rewrites the tables from the code.
  assert.equal(doc, withOptionTables(doc));
});

test('docs/permessage-deflate.md explains exactly the permessage-deflate options the code takes', () => {
  const doc = read('docs/permessage-deflate.md');
  const rows = doc.split('\n').filter((line) => /^\| `[a-zA-Z]+` \|/.test(line));
  const documented = new Set(rows.map((line) => /^\| `([a-zA-Z]+)`/.exec(line)![1]));
  assert.deepEqual([...documented].sort(), DEFLATE_OPTIONS.options.map((spec) => spec.name).sort());
});
