/**
 * `npm run fuzz`: the properties of packages/switchyard/test/fuzz/properties.ts, run for much
 * longer than in `npm test`, bounded by time (FUZZ_SECONDS, default 60), in rounds of fresh
 * random seeds shared out over every property. A counterexample is written to
 * packages/switchyard/test/fuzz/seeds/<property>-<seed>.json, which fuzz.test.ts replays from
 * then on. The figures (inputs tried, failures found) go to docs/figures/fuzz.{json,md}.
 *
 * Exit code: 0 when nothing failed, 1 when a counterexample was found.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { PROPERTIES, type Seed } from '../packages/switchyard/test/fuzz/properties.js';

const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
const runsPerRound = Number(process.env.FUZZ_ROUND_RUNS ?? 500);
const root = new URL('..', import.meta.url);
const seedsDir = new URL('packages/switchyard/test/fuzz/seeds/', root);
const figuresDir = new URL('docs/figures/', root);

interface Tally {
  property: string;
  inputs: number;
  rounds: number;
  failures: number;
}

const tallies: Tally[] = PROPERTIES.map((p) => ({
  property: p.name,
  inputs: 0,
  rounds: 0,
  failures: 0,
}));
const found: Seed[] = [];
const started = Date.now();
const deadline = started + seconds * 1000;
let lastReport = started;

outer: for (;;) {
  for (let i = 0; i < PROPERTIES.length; i++) {
    if (Date.now() >= deadline) break outer;
    const { name, property } = PROPERTIES[i];
    const seed = (Math.random() * 0x7fff_ffff) | 0;
    const details = fc.check(property, { seed, numRuns: runsPerRound });
    const tally = tallies[i];
    tally.rounds++;
    tally.inputs += details.numRuns;
    if (details.failed) {
      tally.failures++;
      const entry: Seed = {
        property: name,
        seed: details.seed,
        path: details.counterexamplePath ?? '',
        counterexample: fc.stringify(details.counterexample),
        error: String(
          (details.errorInstance as Error | undefined)?.message ?? details.errorInstance,
        ).slice(0, 2000),
        found: new Date().toISOString().slice(0, 10),
      };
      found.push(entry);
      mkdirSync(seedsDir, { recursive: true });
      const file = new URL(`${name}-${details.seed}.json`, seedsDir);
      writeFileSync(file, `${JSON.stringify(entry, null, 2)}\n`);
      console.error(
        `counterexample for ${name} (seed ${details.seed}) written to ${file.pathname}`,
      );
      console.error(entry.error);
    }
  }
  if (Date.now() - lastReport >= 5000) {
    lastReport = Date.now();
    const total = tallies.reduce((n, t) => n + t.inputs, 0);
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    process.stderr.write(
      `fuzz: ${total.toLocaleString('en')} inputs, ${found.length} failures, ${left} s left\n`,
    );
  }
}

const elapsed = (Date.now() - started) / 1000;
const total = tallies.reduce((n, t) => n + t.inputs, 0);
const report = {
  date: new Date().toISOString(),
  node: process.version,
  seconds: Math.round(elapsed),
  inputs: total,
  failures: found.length,
  properties: tallies,
};
mkdirSync(figuresDir, { recursive: true });
writeFileSync(new URL('fuzz.json', figuresDir), `${JSON.stringify(report, null, 2)}\n`);
const rows = tallies.map(
  (t) => `| ${t.property} | ${t.inputs.toLocaleString('en')} | ${t.failures} |`,
);
writeFileSync(
  new URL('fuzz.md', figuresDir),
  [
    `# Last fuzz run`,
    '',
    `${report.date.slice(0, 10)}, Node ${report.node}, ${report.seconds} s: ` +
      `${total.toLocaleString('en')} inputs, each fed whole and split (the frame parser also byte by byte); ` +
      `${found.length} counterexamples.`,
    '',
    '| property | inputs tried | counterexamples |',
    '| --- | ---: | ---: |',
    ...rows,
    '',
  ].join('\n'),
);
console.log(
  `fuzz: ${total.toLocaleString('en')} inputs in ${report.seconds} s, ${found.length} counterexamples`,
);
process.exit(found.length === 0 ? 0 : 1);
