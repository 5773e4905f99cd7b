/**
 * The quick fuzz run of `npm test`: every property of properties.ts for a few hundred inputs
 * (seconds in all), then every counterexample `npm run fuzz` ever found, replayed from
 * seeds/*.json so that it stays fixed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { PROPERTIES, type Seed } from './properties.js';
import { countWork } from '../helpers/work.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

for (const { name, property } of PROPERTIES) {
  test(`fuzz ${name}: any input, split anywhere, ends in valid events or the right failure`, () => {
    fc.assert(property, { numRuns: RUNS });
  });
}

const seedsDir = new URL('./seeds/', import.meta.url);
const seeds = readdirSync(seedsDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(new URL(f, seedsDir), 'utf8')) as Seed);

test('every seed file names a known property', () => {
  const names = new Set(PROPERTIES.map((p) => p.name));
  for (const seed of seeds) assert.ok(names.has(seed.property), seed.property);
});

for (const seed of seeds) {
  test(`regression: ${seed.property} seed ${seed.seed} (found ${seed.found}) stays fixed`, () => {
    const entry = PROPERTIES.find((p) => p.name === seed.property);
    assert.ok(entry);
    fc.assert(entry.property, { seed: seed.seed, path: seed.path, endOnFailure: true });
  });
}

test('header lists parse 64 KiB of adversarial text in linear time (ws CVE-2021-32640)', async () => {
  const lists = await import('../../src/core/header-lists.js');
  const parsers = [
    lists.parseSubprotocolList,
    lists.parseTokenList,
    lists.parseUpgradeList,
    lists.parseExtensionOffers,
  ];
  // The shapes that made backtracking regular expressions explode: long runs of separators,
  // whitespace and unterminated quotes, then one character that makes the whole value invalid.
  const inputs = [
    `a${' '.repeat(65536)}!`,
    `${'a,'.repeat(32768)}\u0000`,
    `${', '.repeat(32768)}"`,
    `x;${'a=1;'.repeat(16384)}"`,
    `x; a="${'\\"'.repeat(32768)}`,
    `${'\t'.repeat(65536)};`,
  ];
  for (const parse of parsers) {
    for (const input of inputs) {
      const work = countWork(() => parse(input));
      assert.ok(
        work.total <= 4 * input.length,
        `${parse.name} examined ${work.total} characters of ${input.length}`,
      );
    }
  }
});
