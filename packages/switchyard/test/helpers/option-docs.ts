/**
 * The option tables that docs/reference.md shows, by the name of their markers
 * (`<!-- options:NAME:start -->` … `<!-- options:NAME:end -->`). `scripts/option-tables.ts`
 * writes them into the page and test/docs.test.ts checks that the page holds them.
 */
import {
  formatInsteadOfTable,
  formatOptionTable,
  type OptionTable,
} from '../../src/core/options.js';
import {
  CONNECT_OPTIONS,
  HEARTBEAT_OPTIONS,
  SERVER_CLOSE_OPTIONS,
  SERVER_OPTIONS,
  WEBSOCKET_OPTIONS,
} from '../../src/node/options.js';
import { RECONNECT_OPTIONS } from '../../src/core/reconnecting-client.js';
import { BROWSER_RECONNECTING_OPTIONS } from '../../src/browser/options.js';
import { PUBSUB_OPTIONS } from '../../src/pubsub/topics.js';
import { REPLAY_OPTIONS } from '../../src/pubsub/replay.js';

/** The generated Markdown of every marked table of docs/reference.md. */
export function referenceOptionTables(): Record<string, string> {
  const tables: Record<string, OptionTable> = {
    server: SERVER_OPTIONS,
    'server-close': SERVER_CLOSE_OPTIONS,
    connect: CONNECT_OPTIONS,
    websocket: WEBSOCKET_OPTIONS,
    heartbeat: HEARTBEAT_OPTIONS,
    pubsub: PUBSUB_OPTIONS,
    replay: REPLAY_OPTIONS,
    reconnect: RECONNECT_OPTIONS,
    browser: BROWSER_RECONNECTING_OPTIONS,
  };
  const out: Record<string, string> = {};
  for (const [name, table] of Object.entries(tables)) out[name] = formatOptionTable(table);
  out['ws-server'] = formatInsteadOfTable(SERVER_OPTIONS);
  out['ws-client'] = formatInsteadOfTable(CONNECT_OPTIONS);
  return out;
}

/** `doc` with every marked table replaced by its generated Markdown. */
export function withOptionTables(doc: string): string {
  let result = doc;
  for (const [name, table] of Object.entries(referenceOptionTables())) {
    const start = `<!-- options:${name}:start -->`;
    const end = `<!-- options:${name}:end -->`;
    const from = result.indexOf(start);
    const to = result.indexOf(end);
    if (from === -1 || to < from) throw new Error(`docs/reference.md lacks the ${name} markers`);
    result = `${result.slice(0, from + start.length)}\n${table}\n${result.slice(to)}`;
  }
  return result;
}
