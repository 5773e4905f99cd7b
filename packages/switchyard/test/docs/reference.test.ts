/**
 * docs/reference.md against the code: the error table and the list of every export of every
 * package entry point, both compared both ways, so that neither can drift from the library.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ERROR_CODES } from '../../src/core/errors.js';
import { DEFLATE_OPTIONS } from '../../src/node/options.js';
import { withOptionTables } from '../helpers/option-docs.js';
import { ROOT } from './blocks.js';

const root = new URL('../../../../', import.meta.url);
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

/** Every entry point of every package: `switchyard`, `switchyard/core`, … with its source file. */
function entryPoints(): Array<{ name: string; source: string }> {
  const out: Array<{ name: string; source: string }> = [];
  for (const dir of readdirSync(join(ROOT, 'packages')).sort()) {
    const manifest = join(ROOT, 'packages', dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
      name: string;
      exports?: Record<string, string | Record<string, string>>;
    };
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      if (subpath.includes('*') || subpath === './package.json') continue;
      const source = typeof target === 'string' ? undefined : target['switchyard-source'];
      assert.ok(source, `${pkg.name} ${subpath} has a switchyard-source condition`);
      out.push({
        name: subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`,
        source: join(ROOT, 'packages', dir, source),
      });
    }
  }
  return out;
}

let compiled: { key: string; program: ts.Program } | undefined;

/** One TypeScript program over `sources` (cached: both tests use the same one). */
function compile(sources: string[]): { checker: ts.TypeChecker; files: ts.SourceFile[] } {
  const key = sources.join('\n');
  if (compiled?.key !== key) compiled = { key, program: createProgram(sources) };
  const files = sources.map((s) => compiled!.program.getSourceFile(s)!);
  return { checker: compiled.program.getTypeChecker(), files };
}

function createProgram(sources: string[]): ts.Program {
  return ts.createProgram(sources, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    customConditions: ['switchyard-source'],
    types: ['node'],
    skipLibCheck: true,
    noEmit: true,
  });
}

/** The names (values and types) that each source file exports, as TypeScript sees them. */
function exportedNames(sources: string[]): Map<string, string[]> {
  const { checker } = compile(sources);
  const out = new Map<string, string[]>();
  for (const source of sources) {
    const file = compiled!.program.getSourceFile(source);
    assert.ok(file, `${source} is in the program`);
    const symbol = checker.getSymbolAtLocation(file);
    assert.ok(symbol, `${source} is a module`);
    out.set(
      source,
      checker
        .getExportsOfModule(symbol)
        .map((s) => s.name)
        .sort(),
    );
  }
  return out;
}

/** The names listed in the first column of `<!-- exports:start NAME -->` … `<!-- exports:end -->`. */
function documentedExports(doc: string, entry: string): Set<string> | undefined {
  const start = doc.indexOf(`<!-- exports:start ${entry} -->`);
  if (start < 0) return undefined;
  const end = doc.indexOf('<!-- exports:end -->', start);
  assert.ok(end > start, `the exports list of ${entry} is closed`);
  const names = new Set<string>();
  for (const row of doc.slice(start, end).split('\n')) {
    const firstCell = /^\|([^|]*)\|/.exec(row)?.[1] ?? '';
    for (const m of firstCell.matchAll(/`([A-Za-z_$][\w$]*)`/g)) names.add(m[1]!);
  }
  return names;
}

test('docs/reference.md lists every export of every entry point, and only real ones', () => {
  const doc = read('docs/reference.md');
  const entries = entryPoints();
  assert.ok(
    entries.some((e) => e.name === 'switchyard/core'),
    'switchyard/core is an entry point',
  );
  const exported = exportedNames(entries.map((e) => e.source));
  const problems: string[] = [];
  for (const entry of entries) {
    const names = exported.get(entry.source)!;
    const listed = documentedExports(doc, entry.name);
    if (listed === undefined) {
      problems.push(`${entry.name}: no <!-- exports:start ${entry.name} --> list`);
      continue;
    }
    for (const name of names) {
      if (!listed.has(name)) problems.push(`${entry.name}: ${name} is exported but not listed`);
    }
    for (const name of listed) {
      if (!names.includes(name)) problems.push(`${entry.name}: ${name} is listed but not exported`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the exports the issue named are described, not only listed', () => {
  const doc = read('docs/reference.md');
  for (const name of [
    'SERVER_DEFAULTS',
    'CONNECTION_DEFAULTS',
    'DEFLATE_DEFAULTS',
    'PUBSUB_DEFAULTS',
    'proxyFromEnv',
    'CHANNEL_NAMES',
    'consoleLogger',
    'ERROR_CODES',
    'ReadyState',
    'PubSub',
    'IncomingMessageData',
  ]) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    assert.ok(row, `${name} has a row of its own`);
    assert.ok(row.split('|')[2]!.trim().length > 30, `${name} is described: ${row}`);
  }
});

test('every counter of server.pubsub.stats is documented in the reference and in pubsub.md', () => {
  const { checker, files } = compile(entryPoints().map((e) => e.source));
  const main = files[entryPoints().findIndex((e) => e.name === 'switchyard')]!;
  const stats = checker
    .getExportsOfModule(checker.getSymbolAtLocation(main)!)
    .find((s) => s.name === 'PubSubStats')!;
  const aliased = stats.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(stats) : stats;
  const counters = checker
    .getPropertiesOfType(checker.getDeclaredTypeOfSymbol(aliased))
    .map((p) => p.name);
  assert.ok(counters.includes('compressed'), `counters: ${counters.join(', ')}`);
  const referenceRow = read('docs/reference.md')
    .split('\n')
    .find((line) => line.startsWith('| `pubsub` |') && line.includes('stats'));
  const pubsubRow = read('docs/pubsub.md')
    .split('\n')
    .find((line) => line.startsWith('| `server.pubsub.stats` |'));
  for (const counter of counters) {
    assert.ok(
      referenceRow?.includes(`\`${counter}\``),
      `reference.md: server.pubsub.stats.${counter}`,
    );
    assert.ok(pubsubRow?.includes(`\`${counter}\``), `pubsub.md: server.pubsub.stats.${counter}`);
  }
});
