/**
 * STYLE.md: src/core is sans-I/O. No Node modules, no Buffer, no process, no timers, no require.
 * This test reads every source file of src/core and names the file and line of any breach.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const coreDir = fileURLToPath(new URL('../../src/core/', import.meta.url));

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listFiles(path);
    return /\.(ts|mts|cts|js|mjs)$/.test(name) ? [path] : [];
  });
}

/**
 * Blanks out comments (and, if `strings`, the contents of string literals) while keeping every
 * newline, so that line numbers still match the file.
 */
function blank(source: string, strings: boolean): string {
  let out = '';
  let i = 0;
  const keepNewlines = (text: string): string => text.replace(/[^\n]/g, ' ');
  while (i < source.length) {
    const ch = source[i];
    const next = source[i + 1];
    if (ch === '/' && next === '/') {
      const end = source.indexOf('\n', i);
      const stop = end === -1 ? source.length : end;
      out += keepNewlines(source.slice(i, stop));
      i = stop;
    } else if (ch === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? source.length : end + 2;
      out += keepNewlines(source.slice(i, stop));
      i = stop;
    } else if (ch === "'" || ch === '"' || ch === '`') {
      let j = i + 1;
      while (j < source.length && source[j] !== ch) j += source[j] === '\\' ? 2 : 1;
      const literal = source.slice(i, j + 1);
      out += strings ? ch + keepNewlines(literal.slice(1, -1)) + ch : literal;
      i = j + 1;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

const builtins = new Set(builtinModules.flatMap((m) => [m, m.replace(/^node:/, '')]));
const forbiddenGlobals = /\b(Buffer|process|setTimeout|setInterval|setImmediate|require)\b/g;
const specifiers = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)(['"])([^'"]+)\1/g;

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}

test('src/core imports no Node module and uses no Node global (sans-I/O, STYLE.md)', () => {
  const files = listFiles(coreDir);
  assert.ok(files.length > 0, 'found the source files of src/core');
  const breaches: string[] = [];
  for (const file of files) {
    const source = readFileSync(file, 'utf8');
    const name = relative(coreDir, file);
    const code = blank(source, false);
    for (const m of code.matchAll(specifiers)) {
      const spec = m[2];
      if (spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0])) {
        breaches.push(`${name}:${lineOf(code, m.index!)} imports the Node module '${spec}'`);
      }
    }
    const bare = blank(source, true);
    for (const m of bare.matchAll(forbiddenGlobals)) {
      // A property of another object (`foo.process`) or a key (`process:`) is not the global.
      if (bare[m.index! - 1] === '.') continue;
      breaches.push(`${name}:${lineOf(bare, m.index!)} uses ${m[1]}`);
    }
  }
  assert.deepEqual(breaches, [], `sans-I/O breaches in src/core:\n${breaches.join('\n')}`);
});

test('the purity check itself finds imports and globals, and skips comments and strings', () => {
  const sample = [
    "import { x } from 'node:net';",
    '// setTimeout in a comment',
    "const s = 'process in a string';",
    'setTimeout(() => {}, 1);',
  ].join('\n');
  const code = blank(sample, false);
  assert.deepEqual(
    [...code.matchAll(specifiers)].map((m) => m[2]),
    ['node:net'],
  );
  const bare = blank(sample, true);
  assert.deepEqual(
    [...bare.matchAll(forbiddenGlobals)].map((m) => [m[1], lineOf(bare, m.index!)]),
    [['setTimeout', 4]],
  );
});
