// What a user installs: every package packed as `npm publish` would, the tarballs installed into
// a scratch project, and used from ESM, CommonJS and TypeScript (node16 and bundler resolution).
// Runs after `npm run build` (as CI does): packing reuses dist (SWITCHYARD_PACK_USE_DIST=1)
// instead of three more clean builds; a missing dist is built first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function run(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, env: { ...process.env, NODE_OPTIONS: '', ...env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function ok(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv) {
  const result = await run(command, args, cwd, env);
  assert.equal(result.code, 0, `${command} ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

// npm ci caches tarballs but not the registry's metadata, which installing a tarball with
// dependencies (hdr-histogram-js, @redis/client) needs: --prefer-offline takes both from the
// cache when there, and fetches only what is missing (metadata, once).
const PACKAGES = ['switchyard', 'redis', 'cli'];
const INSTALL = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'];

test(
  'the packed packages install and import from ESM, CommonJS and TypeScript',
  {
    timeout: 240_000,
  },
  async (t) => {
    for (const pkg of ['switchyard', 'redis', 'cli']) {
      if (!existsSync(join(root, 'packages', pkg, 'dist'))) {
        await ok('npm', ['run', 'build', '-w', `packages/${pkg}`], root);
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-consumer-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const packs = join(dir, 'packs');
    mkdirSync(packs);
    // One npm for the three packs (each runs its prepack).
    await ok(
      'npm',
      [
        'pack',
        '--silent',
        '--pack-destination',
        packs,
        ...PACKAGES.flatMap((p) => ['-w', `packages/${p}`]),
      ],
      root,
      { SWITCHYARD_PACK_USE_DIST: '1' },
    );
    const files = readdirSync(packs);
    const tarball: Record<string, string> = {
      switchyard: join(
        packs,
        files.find((f) => f.startsWith('switchyard-0'))!,
      ),
      redis: join(
        packs,
        files.find((f) => f.startsWith('switchyard-redis-'))!,
      ),
      cli: join(
        packs,
        files.find((f) => f.startsWith('switchyard-cli-'))!,
      ),
    };
    const listing = await ok('tar', ['tzf', tarball.switchyard!], dir);
    for (const file of ['package/README.md', 'package/LICENSE', 'package/src/index.ts']) {
      assert.ok(listing.includes(file), `${file} is in the switchyard tarball`);
    }
    for (const pkg of ['redis', 'cli']) {
      assert.match(await ok('tar', ['tzf', tarball[pkg]!], dir), /package\/LICENSE/);
    }

    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), '{"name":"app","private":true,"type":"module"}\n');

    // The CLI without @switchyard/redis (an optional peer): installs, and --redis says what to do.
    await ok('npm', [...INSTALL, tarball.switchyard!, tarball.cli!], app);
    assert.ok(!existsSync(join(app, 'node_modules', '@switchyard', 'redis')));
    const bin = join(app, 'node_modules', '@switchyard', 'cli', 'bin', 'switchyard.js');
    const noRedis = await run(
      process.execPath,
      [bin, 'serve', '--redis', 'redis://127.0.0.1:1'],
      app,
    );
    assert.equal(noRedis.code, 2, noRedis.stderr);
    assert.match(noRedis.stderr, /needs the optional package @switchyard\/redis/);
    assert.doesNotMatch(noRedis.stderr, /ERR_MODULE_NOT_FOUND|\n\s+at /);
    assert.match(await ok(process.execPath, [bin, '--help'], app), /doctor/);

    await ok('npm', [...INSTALL, tarball.redis!], app);

    // ESM: a real round trip through the installed package.
    writeFileSync(
      join(app, 'esm.mjs'),
      `import { WebSocketServer, connect, BrowserWebSocket } from 'switchyard';
import { Connection } from 'switchyard/core';
import { ReconnectingWebSocket } from 'switchyard/browser';
import { RedisBackplane } from '@switchyard/redis';
import pkg from 'switchyard/package.json' with { type: 'json' };
const server = new WebSocketServer();
server.on('connection', (ws) => ws.on('message', (data) => ws.send(data)));
const { port } = await server.listen(0, '127.0.0.1');
const ws = await connect(\`ws://127.0.0.1:\${port}/\`);
const echoed = new Promise((resolve) => ws.once('message', resolve));
ws.send('hello');
const browser = new ReconnectingWebSocket(\`ws://127.0.0.1:\${port}/\`, { WebSocket: BrowserWebSocket });
const fromBrowser = new Promise((resolve) => browser.addEventListener('message', (e) => resolve(e.data)));
browser.send('browser');
console.log(String(await echoed), await fromBrowser, typeof Connection, typeof RedisBackplane, pkg.name);
ws.terminate();
browser.close();
await server.close();
`,
    );
    assert.equal(
      (await ok(process.execPath, ['esm.mjs'], app)).trim(),
      'hello browser function function switchyard',
    );

    // CommonJS: require() of the ESM packages (Node 20.19+ / 22.12+, as `engines` says).
    writeFileSync(
      join(app, 'cjs.cjs'),
      `const { WebSocketServer } = require('switchyard');
const core = require('switchyard/core');
const { RedisBackplane } = require('@switchyard/redis');
console.log(typeof WebSocketServer, typeof core.Connection, typeof RedisBackplane);
`,
    );
    assert.equal(
      (await ok(process.execPath, ['cjs.cjs'], app)).trim(),
      'function function function',
    );
    // A Node without require(esm) (older than engines allows) gets Node's own clear error.
    const old = await run(process.execPath, ['--no-experimental-require-module', 'cjs.cjs'], app);
    assert.notEqual(old.code, 0);
    assert.match(old.stderr, /ERR_REQUIRE_ESM[\s\S]*dynamic import\(\)/);

    // TypeScript, both resolutions, with the repository's tsc and @types/node.
    writeFileSync(
      join(app, 'main.ts'),
      `import { WebSocketServer, connect, BrowserWebSocket, type ServerOptions, type WebSocket } from 'switchyard';
import { Connection } from 'switchyard/core';
import { ReconnectingWebSocket } from 'switchyard/browser';
import { RedisBackplane } from '@switchyard/redis';
const options: ServerOptions = { maxPayload: 1024 };
const server: WebSocketServer = new WebSocketServer(options);
const pending: Promise<WebSocket> = connect('ws://127.0.0.1:1/');
const browser = new ReconnectingWebSocket('ws://127.0.0.1:1/', { WebSocket: BrowserWebSocket });
void [server, pending, Connection, RedisBackplane, browser];
`,
    );
    // switchyard/browser as a page's code sees it: the DOM library, no @types/node.
    writeFileSync(
      join(app, 'page.ts'),
      `import { ReconnectingWebSocket, type ReconnectingMessageEvent } from 'switchyard/browser';
const ws = new ReconnectingWebSocket('/feed', { resume: true, WebSocket });
ws.addEventListener('message', (event: ReconnectingMessageEvent) => console.log(event.data, event.meta?.position));
ws.addEventListener('gap', ({ topic, from, to }) => console.log(topic, from, to));
ws.send(new Blob(['queued']));
`,
    );
    writeFileSync(
      join(app, 'tsconfig.dom.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'esnext',
          moduleResolution: 'bundler',
          target: 'es2022',
          lib: ['es2022', 'dom'],
          strict: true,
          noEmit: true,
          types: [],
        },
        files: ['page.ts'],
      }),
    );
    await ok(process.execPath, [tsc, '-p', 'tsconfig.dom.json'], app);
    const typeRoots = join(root, 'node_modules', '@types');
    for (const [name, compilerOptions] of [
      ['node16', { module: 'node16', moduleResolution: 'node16' }],
      ['bundler', { module: 'esnext', moduleResolution: 'bundler' }],
    ] as const) {
      writeFileSync(
        join(app, `tsconfig.${name}.json`),
        JSON.stringify({
          compilerOptions: {
            ...compilerOptions,
            target: 'es2022',
            strict: true,
            noEmit: true,
            typeRoots: [typeRoots],
            types: ['node'],
          },
          files: ['main.ts'],
        }),
      );
      await ok(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], app);
    }
  },
);
