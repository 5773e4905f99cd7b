/**
 * Checks of the conformance data itself: every case of the suite's sections is there once, and
 * the UTF-8 verdicts written in section 6 agree with an independent validator.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CASES, limitCases } from './cases.js';

test('the cases cover every case of sections 1-7 and 10 of the suite, once each', () => {
  const ids = CASES.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length, 'ids are unique');
  const perSection: Record<string, number> = {};
  for (const id of ids) {
    const section = id.split('.')[0];
    perSection[section] = (perSection[section] ?? 0) + 1;
  }
  assert.deepEqual(perSection, { 1: 16, 2: 11, 3: 7, 4: 10, 5: 20, 6: 145, 7: 37, 10: 1 });
  // Section 6.x.y numbering runs without gaps: 6.22 has 34 cases, 6.23 has 7.
  assert.ok(ids.includes('6.22.34') && !ids.includes('6.22.35'));
  assert.ok(ids.includes('6.23.7') && !ids.includes('6.23.8'));
});

test('the section 6 verdicts agree with a fatal TextDecoder', () => {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const single = CASES.filter((c) => /^6\.(?:[5-9]|1\d|2[0-3])\./.test(c.id));
  assert.equal(single.length, 132);
  for (const c of single) {
    const step = c.steps[0];
    assert.equal(step.type, 'send');
    const payload = step.type === 'send' ? (step.frames[0].payload ?? new Uint8Array(0)) : null;
    let valid = true;
    try {
      decoder.decode(payload as Uint8Array);
    } catch {
      valid = false;
    }
    assert.equal(c.outcome.close.by === 'tester', valid, `${c.id} is ${valid ? '' : 'in'}valid`);
  }
});

test('section 9 is scaled: its payloads are those of the suite, fewer of them', () => {
  const cases = limitCases();
  assert.equal(new Set(cases.map((c) => c.id)).size, cases.length);
  for (const c of cases) assert.ok(/^9\.[1-8]\.\d$/.test(c.id), c.id);
});
