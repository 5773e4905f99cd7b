/**
 * What every benchmark server shares: the port announcement and the control channel on stdin.
 *
 * A server prints `{"port":N}` once it listens. On a line `mem` on stdin it collects garbage
 * and prints `{"rss":…,"heapUsed":…}` (with heapTotal,
 * external, arrayBuffers and the young generation's size, newSpace), so that the runner can measure memory per connection
 * without asking the server over the network it is measuring. On `snapshot PATH` it collects
 * garbage, writes a V8 heap snapshot to PATH and prints `{"snapshot":1}` (for
 * bench/heap-per-connection.ts).
 */
import { createInterface } from 'node:readline';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';

declare const gc: (() => void) | undefined;

export function announce(port: number): void {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

export function serveControl(): void {
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const [command, path] = line.trim().split(' ');
    if (command !== 'mem' && command !== 'snapshot') return;
    // Several passes: the first frees what the second can then compact.
    for (let i = 0; i < 3; i++) if (typeof gc === 'function') gc();
    if (command === 'snapshot') {
      writeHeapSnapshot(path);
      process.stdout.write(`${JSON.stringify({ snapshot: 1 })}\n`);
      return;
    }
    const m = process.memoryUsage();
    // The young generation's size too: it grows with what survives scavenges, and its
    // committed pages count in RSS but not in heapUsed.
    const young = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    process.stdout.write(
      `${JSON.stringify({
        rss: m.rss,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        external: m.external,
        arrayBuffers: m.arrayBuffers,
        newSpace: young?.space_size ?? 0,
      })}\n`,
    );
  });
  // The runner went away: do not linger.
  rl.on('close', () => process.exit(0));
}
