/**
 * Bytes per idle connection, Switchyard beside the Node floor (and ws): RSS and V8 heap after
 * GC, N connections opened by the C generator's idle mode, servers taking turns.
 *
 * Usage: node --import tsx bench/idle-memory.ts [conns=5000] [rounds=2]
 */
import { availableTargets, buildGenerator, measureIdle, startServer } from './run.js';

const conns = Number(process.argv[2] ?? 5000);
const rounds = Number(process.argv[3] ?? 2);
const gen = buildGenerator();
const targets = availableTargets().targets.filter((t) =>
  ['switchyard', 'floor', 'ws'].includes(t.name),
);
const rows: Record<string, { rss: number[]; heap: number[] }> = {};
for (let r = 0; r < rounds; r++) {
  for (const t of targets) {
    const server = await startServer(t, []);
    try {
      const m = await measureIdle(server, gen, conns);
      (rows[t.name] ??= { rss: [], heap: [] }).rss.push(m.value);
      rows[t.name].heap.push(m.heapPerConn);
      console.error(`${t.name}: ${m.value.toFixed(2)} KB RSS, ${m.heapPerConn.toFixed(2)} KB heap`);
    } finally {
      await server.stop();
    }
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const [name, v] of Object.entries(rows)) {
  console.log(
    `${name.padEnd(12)} RSS ${med(v.rss).toFixed(2)} KB/conn, heap ${med(v.heap).toFixed(2)} KB/conn`,
  );
}
process.exit(0);
