// Writes the option tables generated from the code's option tables into docs/reference.md
// (between the `<!-- options:NAME:start/end -->` markers). Usage: npx tsx scripts/option-tables.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { withOptionTables } from '../packages/switchyard/test/helpers/option-docs.js';

const path = new URL('../docs/reference.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withOptionTables(before);
if (after !== before) writeFileSync(path, after);
console.log(after === before ? 'docs/reference.md is up to date' : 'docs/reference.md updated');
