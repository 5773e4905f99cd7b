/**
 * Code blocks of the Markdown docs, with the `docs-test` markers that say how to test them.
 *
 * Theory of operation: a fenced block is found by its opening fence (```lang); the HTML comments
 * `<!-- docs-test: ... -->` right above it (blank lines allowed between them, nothing else) are
 * its markers. Comments are invisible on GitHub and npm, so a marker can hold a prelude of code
 * that the reader does not need to see. The marker language is described in
 * `test/docs/code-blocks.test.ts` and in CONTRIBUTING.md.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** One fenced code block. */
export interface CodeBlock {
  /** Path of the Markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the first line of code (the line after the opening fence). */
  line: number;
  /** The info string's first word, lower-cased (`ts`, `nginx`, ''). */
  lang: string;
  code: string;
  /** Every marker word after `docs-test:`, in order; a prelude's code is not among them. */
  markers: Marker[];
}

/** One `<!-- docs-test: KIND ARGS -->` comment. */
export interface Marker {
  kind: string;
  /** `key=value` arguments. */
  args: Record<string, string>;
  /** The rest of the comment after the kind, as written (the reason of a skip, a prelude's code). */
  text: string;
}

/** Languages whose blocks are type-checked (and maybe run). */
export const SCRIPT_LANGS: Readonly<Record<string, 'ts' | 'js'>> = {
  ts: 'ts',
  typescript: 'ts',
  js: 'js',
  javascript: 'js',
  mjs: 'js',
};

/** README.md, packages/NAME/README.md and docs/*.md: every Markdown file users read. */
export function docFiles(): string[] {
  const files = ['README.md'];
  for (const pkg of readdirSync(join(ROOT, 'packages')).sort()) {
    if (existsSync(join(ROOT, 'packages', pkg, 'README.md')))
      files.push(`packages/${pkg}/README.md`);
  }
  for (const name of readdirSync(join(ROOT, 'docs')).sort()) {
    if (name.endsWith('.md')) files.push(`docs/${name}`);
  }
  return files;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;

/** Parses the markers in the text between two blocks (HTML comments only). */
function parseMarkers(file: string, line: number, comments: string[]): Marker[] {
  const markers: Marker[] = [];
  for (const comment of comments) {
    const match = /^<!--\s*docs-test:\s*([\s\S]*?)\s*-->$/.exec(comment.trim());
    if (!match) continue;
    const body = match[1]!;
    const kind = /^\S+/.exec(body)?.[0] ?? '';
    const text = body.slice(kind.length).replace(/^[ \t]*\n?/, '');
    const args: Record<string, string> = {};
    if (kind !== 'prelude') {
      for (const m of text.matchAll(/(\w+)=(\S+)/g)) args[m[1]!] = m[2]!;
    }
    if (!kind) throw new Error(`${file}:${line}: empty docs-test marker`);
    markers.push({ kind, args, text });
  }
  return markers;
}

/** Every fenced block of `file` (relative to the root), with its markers. */
export function extractBlocks(file: string): CodeBlock[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const blocks: CodeBlock[] = [];
  // HTML comments seen since the last non-blank, non-comment line.
  let comments: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    const fence = FENCE.exec(text);
    if (fence) {
      const close = fence[1]!;
      const start = i + 1;
      let end = start;
      while (end < lines.length && !lines[end]!.trimStart().startsWith(close)) end++;
      blocks.push({
        file,
        line: start + 1,
        lang: fence[2]!.toLowerCase(),
        code: lines.slice(start, end).join('\n') + '\n',
        markers: parseMarkers(file, start, comments),
      });
      comments = [];
      i = end;
      continue;
    }
    if (text.trim() === '') continue;
    if (text.trimStart().startsWith('<!--')) {
      let comment = text;
      while (!comment.includes('-->') && i + 1 < lines.length) comment += '\n' + lines[++i];
      comments.push(comment);
      continue;
    }
    comments = [];
  }
  return blocks;
}

/** A short name for messages: `docs/reference.md:120`. */
export function where(block: CodeBlock): string {
  return `${block.file}:${block.line}`;
}

/** The marker of this kind, if any. */
export function marker(block: CodeBlock, kind: string): Marker | undefined {
  return block.markers.find((m) => m.kind === kind);
}

/** Path relative to the root, for messages. */
export function fromRoot(path: string): string {
  return relative(ROOT, path);
}
