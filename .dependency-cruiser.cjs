/**
 * The layering of STYLE.md, checked by `npm run lint` (`npm run lint:deps`): bytes flow up
 * through core, node and pubsub, calls flow down, and nothing reaches upward or in a circle.
 *
 *   packages/cli, packages/redis   the library's public entry points only
 *   src/ws                         the ws-compatible adapter over the public API (src/index.ts)
 *   src/browser                    switchyard/browser: the reconnecting client for browsers;
 *                                  may use core only (it is bundled for pages: no Node module)
 *   src/pubsub                     topics and backplanes; may use node and core
 *   src/node                       I/O; may use core, never pubsub (one exception below)
 *   src/core                       sans-I/O: no node:* module, nothing from node or pubsub
 *
 * Type-only imports count (`tsPreCompilationDeps`): a circle of types is still a circle for the
 * reader, and the next value import would close it for real.
 *
 * The one arrow from node to pubsub: `node/server.ts` owns the server's topics (its public API
 * is `new WebSocketServer({ pubsub })`, `server.pubsub`, `server.publish`), so it creates them
 * from `pubsub/topics.ts`. It is the top of the node layer: nothing in pubsub may import it,
 * and connections reach their topics through the `TopicHub` interface of node/websocket.ts.
 *
 * To see the rules fail: packages/switchyard/test/lint/layering.test.ts writes a circle and an upward import into
 * a scratch copy of a source tree and expects this configuration to refuse them.
 */
/* global module */
const SRC = '^packages/switchyard/src';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'Import cycles: break them by moving the shared piece down or passing an interface in.',
      from: { pathNot: `${SRC}/ws/` },
      to: { circular: true },
    },
    {
      name: 'no-circular-ws',
      severity: 'error',
      comment:
        'switchyard/ws mirrors ws, whose WebSocket.Server and createWebSocketStream statics name ' +
        'each other: type-only circles are allowed there, value circles are not.',
      from: { path: `${SRC}/ws/` },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'core-no-node-modules',
      severity: 'error',
      comment: 'The core is sans-I/O: no node:* (or bare Node built-in) imports.',
      from: { path: `${SRC}/core/` },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'core-not-upward',
      severity: 'error',
      comment: 'The core imports nothing from node or pubsub, nor the package entry.',
      from: { path: `${SRC}/core/` },
      to: { path: `${SRC}/(node/|pubsub/|index\\.ts)` },
    },
    {
      name: 'node-not-pubsub',
      severity: 'error',
      comment: 'node is below pubsub: it reaches topics through node/websocket.ts TopicHub.',
      from: { path: `${SRC}/node/`, pathNot: `${SRC}/node/server\\.ts$` },
      to: { path: `${SRC}/pubsub/` },
    },
    {
      name: 'server-only-creates-topics',
      severity: 'error',
      comment: 'node/server.ts creates its topics and nothing more from pubsub.',
      from: { path: `${SRC}/node/server\\.ts$` },
      to: { path: `${SRC}/pubsub/`, pathNot: `${SRC}/pubsub/topics\\.ts$` },
    },
    {
      name: 'pubsub-not-server',
      severity: 'error',
      comment: 'node/server.ts sits above pubsub/topics.ts: pubsub never imports it.',
      from: { path: `${SRC}/pubsub/` },
      to: { path: `${SRC}/node/server\\.ts$` },
    },
    {
      name: 'no-entry-inside',
      severity: 'error',
      comment:
        'Modules of the library import each other, never the package entry; the ws ' +
        'compatibility layer (src/ws) is an adapter over the public API and may.',
      from: { path: `${SRC}/`, pathNot: `${SRC}/ws/` },
      to: { path: `${SRC}/index\\.ts$` },
    },
    {
      name: 'nothing-below-uses-ws',
      severity: 'error',
      comment: 'src/ws sits on top of the library: core, node and pubsub never import it.',
      from: { path: `${SRC}/(core|node|pubsub)/` },
      to: { path: `${SRC}/ws/` },
    },
    {
      name: 'browser-core-only',
      severity: 'error',
      comment:
        'switchyard/browser runs in pages and workers: it may import src/browser and src/core, ' +
        'never node, pubsub, ws or the package entry, nor any Node built-in.',
      from: { path: `${SRC}/browser/` },
      to: { pathNot: `${SRC}/(browser|core)/` },
    },
    {
      name: 'nothing-uses-browser',
      severity: 'error',
      comment:
        'src/browser is a leaf entry point: shared logic goes down to core, where both ' +
        'reconnecting clients import it.',
      from: { path: SRC, pathNot: `${SRC}/browser/` },
      to: { path: `${SRC}/browser/` },
    },
    {
      name: 'packages-use-public-api',
      severity: 'error',
      comment: 'cli and redis use the library as users do: `switchyard`, `switchyard/core`.',
      from: { path: '^packages/(cli|redis)/src/' },
      to: {
        path: '^packages/switchyard/src/',
        pathNot: '/index[.]ts$',
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    // Resolve `switchyard` to its sources like the tests do, so a deep import shows up as one.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['switchyard-source', 'import', 'types', 'default'],
      extensions: ['.ts', '.js', '.d.ts'],
    },
  },
};
