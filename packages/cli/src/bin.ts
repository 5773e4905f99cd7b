/** Entry point when run from source: `node --conditions=switchyard-source --import tsx src/bin.ts`. */
import { main } from './main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Whatever still holds the event loop (stdin, a socket in its close timeout) must not keep the
// command alive once it has finished; an unref'd timer fires only in that case.
setTimeout(() => process.exit(code), 500).unref();
