/**
 * Keeps `npm run bench` from rotting: a few seconds of its quick mode, checking the shape of the
 * report it writes. No figure is asserted: this machine's speed is not the library's behaviour.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../', import.meta.url));

function runBench(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'bench', 'run.ts'), ...args],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    // Bounded: the quick run takes a few seconds; a hung one is killed, and the test fails.
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('the quick benchmark runs two scenarios and the microbenchmarks and writes a well-formed report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-smoke-'));
  try {
    const out = join(dir, 'report.json');
    const { code, stdout, stderr } = await runBench([
      '--quick',
      '--scenario',
      'echo-32b,handshakes,micro',
      '--out',
      out,
    ]);
    assert.equal(code, 0, `bench failed:\n${stderr}`);
    assert.match(stdout, /\| scenario/);

    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.schema, 1);
    assert.equal(report.quick, true);
    assert.equal(report.machine.node, process.version);
    assert.equal(typeof report.machine.commit, 'string');
    assert.ok(['c', 'node'].includes(report.generator.kind));
    assert.deepEqual(
      report.targets.map((t: { name: string }) => t.name),
      ['switchyard', 'ws', 'floor'],
    );
    assert.deepEqual(
      report.scenarios.map((s: { name: string }) => s.name),
      ['echo-32b', 'handshakes'],
    );
    for (const s of report.scenarios) {
      for (const name of ['switchyard', 'ws', 'floor']) {
        const r = s.results[name];
        assert.equal(r.runs.length, 1);
        assert.equal(typeof r.median, 'number');
        assert.ok(r.median > 0, `${s.name}/${name} measured nothing`);
        assert.equal(typeof r.spreadPct, 'number');
      }
      assert.equal(typeof s.ratios.ws, 'number');
      assert.equal(typeof s.ratios.floor, 'number');
      assert.equal(s.target.against, 'floor');
      assert.equal(typeof s.target.met, 'boolean');
      assert.equal(typeof s.target.note, 'string');
    }
    assert.ok(report.micro.results.length >= 10);
    for (const r of report.micro.results) {
      assert.equal(typeof r.name, 'string');
      assert.ok(r.nsPerOp > 0, r.name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
