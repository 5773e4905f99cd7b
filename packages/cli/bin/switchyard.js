#!/usr/bin/env node
// The `switchyard` command. Runs the compiled CLI (npm run build); from a checkout without a
// build, use `npm start` or `node --conditions=switchyard-source --import tsx src/bin.ts`.
let main;
try {
  ({ main } = await import('../dist/main.js'));
} catch (error) {
  // In a checkout before `npm run build`, dist/ (of this package or of the library) is missing:
  // say what to run instead of printing Node's module-resolution stack.
  const message = error instanceof Error ? error.message : String(error);
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && /[/\\]dist[/\\]/.test(message)) {
    process.stderr.write(
      'switchyard: this checkout is not built yet (no dist/ folder).\n' +
        'Run `npm run build` at the root of the checkout, then run the command again.\n' +
        'Or run it from the TypeScript sources, without a build:\n' +
        '  node --conditions=switchyard-source --import tsx packages/cli/src/bin.ts <command> ...\n' +
        '  npm start    (switchyard serve)\n',
    );
    process.exit(1);
  }
  throw error;
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Whatever still holds the event loop (stdin, a socket in its close timeout) must not keep the
// command alive once it has finished; an unref'd timer fires only in that case.
setTimeout(() => process.exit(code), 500).unref();
