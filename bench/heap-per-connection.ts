/**
 * Where the heap of an idle connection goes: V8 heap objects per connection, by constructor,
 * for each benchmark server (Switchyard, the Node floor, ws).
 *
 * Theory of operation. A fresh server process writes a heap snapshot (after GC) before and
 * after N idle connections are opened by the C generator's idle mode; every node of both
 * snapshots is grouped by its type and constructor name (an object's class, a closure's
 * function name, V8's own names for internal arrays, maps and code), and the difference of the
 * self sizes, divided by N, is what one connection costs. Self sizes, not retained sizes: they
 * add up to the heap figure of bench/idle-memory.ts, and a row names exactly the objects a
 * change would have to remove. The names of V8's internal objects are its own: `(object
 * properties)` is a PropertyArray (the out-of-object properties of some object), `system /
 * Context` the variables a closure keeps alive, `(object elements)` an array's backing store.
 *
 * With `--holders`, each row is followed by who holds those objects (the first strong
 * reference to each: `Socket._events`, `Receiver.chunks`), which is how to find the field to cut.
 *
 * Usage: node --import tsx bench/heap-per-connection.ts [--holders] [conns=2000]
 *        [targets=switchyard,floor,ws] [rows=30]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { availableTargets, buildGenerator, startServer } from './run.js';

const showHolders = process.argv.includes('--holders');
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const conns = Number(positional[0] ?? 2000);
const wanted = (positional[1] ?? 'switchyard,floor,ws').split(',');
const rows = Number(positional[2] ?? 30);

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[]];
      edge_fields: string[];
      edge_types: [string[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

type Tally = Map<string, { bytes: number; count: number; holders: Map<string, number> }>;

/** A group's name: an object's class, a closure's function, V8's name for its own objects. */
function groupOf(type: string, name: string): string {
  if (type === 'object' || type === 'native') return name;
  if (type === 'closure') return `${name || '(anonymous)'}()`;
  if (type.includes('string')) return '(strings)';
  if (type === 'number' || type === 'bigint') return '(heap numbers)';
  if (type === 'code') return '(code)';
  return `${type}: ${name.length > 40 ? `${name.slice(0, 40)}…` : name}`;
}

/**
 * Bytes and object counts per group in one heap snapshot, with, for each group, the bytes per
 * holder: the first strong reference to each object, as `HolderGroup.edge`.
 */
function tally(path: string): Tally {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const meta = snap.snapshot.meta;
  const types = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const width = meta.node_fields.length;
  const iType = meta.node_fields.indexOf('type');
  const iName = meta.node_fields.indexOf('name');
  const iSize = meta.node_fields.indexOf('self_size');
  const iEdges = meta.node_fields.indexOf('edge_count');
  const eWidth = meta.edge_fields.length;
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const count = snap.nodes.length / width;
  const groups: string[] = new Array<string>(count);
  for (let n = 0; n < count; n++) {
    const i = n * width;
    groups[n] = groupOf(types[snap.nodes[i + iType]], snap.strings[snap.nodes[i + iName]]);
  }
  // The first strong reference to each node names who keeps it.
  const holder: string[] = new Array<string>(count);
  let e = 0;
  for (let n = 0; n < count; n++) {
    const edges = snap.nodes[n * width + iEdges];
    for (let k = 0; k < edges; k++, e += eWidth) {
      const type = edgeTypes[snap.edges[e + eType]];
      if (type === 'weak' || type === 'shortcut') continue;
      const to = snap.edges[e + eTo] / width;
      if (holder[to] !== undefined) continue;
      const raw = snap.edges[e + eName];
      const edge = type === 'element' || type === 'hidden' ? `[${raw}]` : snap.strings[raw];
      holder[to] = `${groups[n]}.${edge.length > 30 ? `${edge.slice(0, 30)}…` : edge}`;
    }
  }
  const out: Tally = new Map();
  for (let n = 0; n < count; n++) {
    const size = snap.nodes[n * width + iSize];
    let row = out.get(groups[n]);
    if (row === undefined) out.set(groups[n], (row = { bytes: 0, count: 0, holders: new Map() }));
    row.bytes += size;
    row.count++;
    const by = holder[n] ?? '(root)';
    row.holders.set(by, (row.holders.get(by) ?? 0) + size);
  }
  return out;
}

/** Opens `n` idle connections to `port`; resolves with how many opened and a stop function. */
async function openIdle(port: number, n: number): Promise<{ ready: number; stop: () => void }> {
  const gen = buildGenerator();
  const [cmd, ...rest] = [...gen.argv, 'idle', '--port', String(port), '--conns', String(n)];
  const child = spawn(cmd, rest, { stdio: ['pipe', 'pipe', 'pipe'] });
  const ready = await new Promise<number>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    createInterface({ input: child.stdout }).once('line', (line) => {
      resolve((JSON.parse(line) as { ready: number }).ready);
    });
    child.once('exit', (code) => reject(new Error(`idle generator exited (${code}): ${err}`)));
  });
  return { ready, stop: () => child.stdin.end('done\n') };
}

const dir = mkdtempSync(join(tmpdir(), 'switchyard-heap-'));
try {
  for (const target of availableTargets().targets.filter((t) => wanted.includes(t.name))) {
    const server = await startServer(target, []);
    let idle: { ready: number; stop: () => void } | null = null;
    try {
      const before = join(dir, `${target.name}-before.heapsnapshot`);
      const after = join(dir, `${target.name}-after.heapsnapshot`);
      await server.ask(`snapshot ${before}`);
      idle = await openIdle(server.port, conns);
      // Let the server finish whatever the last handshakes started.
      await new Promise((r) => setTimeout(r, 500));
      await server.ask(`snapshot ${after}`);
      const a = tally(before);
      const b = tally(after);
      const diff: Array<{
        key: string;
        bytes: number;
        count: number;
        holders: Map<string, number>;
      }> = [];
      for (const key of new Set([...a.keys(), ...b.keys()])) {
        const was = a.get(key) ?? { bytes: 0, count: 0, holders: new Map<string, number>() };
        const now = b.get(key) ?? { bytes: 0, count: 0, holders: new Map<string, number>() };
        const holders = new Map(now.holders);
        for (const [h, bytes] of was.holders) holders.set(h, (holders.get(h) ?? 0) - bytes);
        diff.push({ key, bytes: now.bytes - was.bytes, count: now.count - was.count, holders });
      }
      diff.sort((x, y) => y.bytes - x.bytes);
      const per = (x: number) => x / idle!.ready;
      const total = diff.reduce((s, d) => s + d.bytes, 0);
      console.log(
        `\n${target.title}: ${idle.ready} idle connections, ${per(total).toFixed(0)} B of heap per connection`,
      );
      console.log('| bytes/conn | objects/conn | constructor |\n| ---: | ---: | --- |');
      let shown = 0;
      for (const d of diff.slice(0, rows)) {
        if (Math.abs(per(d.bytes)) < 4) break;
        console.log(`| ${per(d.bytes).toFixed(0)} | ${per(d.count).toFixed(2)} | ${d.key} |`);
        shown += d.bytes;
        if (!showHolders) continue;
        const held = [...d.holders].sort((x, y) => y[1] - x[1]);
        for (const [h, bytes] of held.slice(0, 6)) {
          if (Math.abs(per(bytes)) >= 4)
            console.log(`|   ${per(bytes).toFixed(0)} | | held by ${h} |`);
        }
      }
      console.log(`| ${per(total - shown).toFixed(0)} | | (the rest) |`);
    } finally {
      idle?.stop();
      await server.stop();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
