/**
 * Options as data: one table per class of options (name, type, default, check, meaning).
 *
 * Theory of operation. Each option bag of the public API (server, client, permessage-deflate,
 * heartbeat, topics ...) has a table of {@link OptionSpec}. The same table checks what a caller
 * passes ({@link checkOptions}: an unknown name, or a value of the wrong type or range, throws
 * an {@link InvalidOptionError} naming the option), carries the default that the code uses, and
 * generates the option table of docs/reference.md ({@link formatOptionTable}), which a test
 * compares with the page: code, checks, defaults and docs cannot drift apart.
 *
 * An unknown option is an error rather than something ignored, because an ignored option is a
 * silent change of behaviour: a `ws` program's `verifyClient` that is never called leaves the
 * server open. Names that another library uses (`ws` first) say what to use here instead.
 */
import { InvalidOptionError } from './errors.js';

/** How an option's value is checked, and how its type reads in the docs. */
export interface OptionCheck {
  /** The type as the docs show it, for example `number`, `string \| string[]`. */
  readonly type: string;
  /** What a valid value is, for the error message: "a non-negative integer". */
  readonly expected: string;
  readonly test: (value: unknown) => boolean;
}

/** One option of a bag. */
export interface OptionSpec {
  readonly name: string;
  readonly check: OptionCheck;
  /** The default the code uses, when it is a plain value; `undefined` when there is none. */
  readonly default?: unknown;
  /** The default as the docs show it, when the value alone does not say it well. */
  readonly defaultText?: string;
  /** What the option does (one Markdown paragraph, for the reference table). */
  readonly meaning: string;
}

/** The options of one bag, and the names other libraries use for them. */
export interface OptionTable {
  /** Who takes the bag, for messages: `WebSocketServer`, `connect()`. */
  readonly owner: string;
  readonly options: readonly OptionSpec[];
  /**
   * Options of another table that this bag takes too (the server and `connect()` take every
   * WebSocket option): checked like its own, and shown in the docs as one row, `row`.
   */
  readonly inherits?: { readonly options: readonly OptionSpec[]; readonly row: string };
  /** Names this bag does not take, with what to use instead (a sentence). */
  readonly insteadOf?: Readonly<Record<string, string>>;
}

/**
 * Checks `input` against `table`: every own enumerable key must be an option of the table, and
 * every value that is not `undefined` must pass its check.
 * @throws {InvalidOptionError} `SWITCHYARD_ERR_INVALID_OPTION` naming the first bad option.
 */
export function checkOptions(table: OptionTable, input: unknown, prefix = ''): void {
  if (input === undefined) return;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    const name = prefix === '' ? 'options' : prefix.slice(0, -1);
    throw new InvalidOptionError(
      name,
      `\`${name}\` (the options of ${table.owner}) must be an object, got ${describe(input)}.`,
    );
  }
  const known = new Map(allOptions(table).map((spec) => [spec.name, spec]));
  for (const name of Object.keys(input)) {
    const spec = known.get(name);
    const value = (input as Record<string, unknown>)[name];
    if (spec === undefined) {
      // An unknown key set to undefined is still a mistake (a misspelt name), except that
      // spreading a bag of another shape is common: report it only when it has a value.
      if (value === undefined) continue;
      throw new InvalidOptionError(prefix + name, unknownMessage(table, prefix + name, name));
    }
    if (value === undefined) continue;
    if (!spec.check.test(value)) {
      throw new InvalidOptionError(
        prefix + name,
        `Option \`${prefix + name}\` of ${table.owner} must be ${spec.check.expected}, got ${describe(value)}.`,
      );
    }
  }
}

function unknownMessage(table: OptionTable, fullName: string, name: string): string {
  const head = `Unknown option \`${fullName}\` of ${table.owner}`;
  const instead = table.insteadOf?.[name];
  if (instead !== undefined) return `${head}: ${instead}`;
  const names = allOptions(table).map((spec) => spec.name);
  const near = nearest(name, names);
  if (near !== null) return `${head}; did you mean \`${near}\`?`;
  return `${head}. It takes: ${names.join(', ')}.`;
}

/** The options a bag takes: its own, then the inherited ones. */
export function allOptions(table: OptionTable): readonly OptionSpec[] {
  return table.inherits === undefined
    ? table.options
    : [...table.options, ...table.inherits.options];
}

/** The closest name within two edits (case-insensitive), or null. */
function nearest(name: string, names: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of names) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, stopping early once every path exceeds `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      current.push(value);
      if (value < rowMin) rowMin = value;
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return previous[b.length]!;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'function':
      return 'a function';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

/**
 * The reference table of `table` in Markdown: option, type, default, meaning. The docs hold
 * its output between `<!-- options:NAME:start -->` and `<!-- options:NAME:end -->`.
 */
export function formatOptionTable(table: OptionTable): string {
  const rows = table.options.map((spec) => {
    const type = spec.check.type.replaceAll('|', '\\|');
    return `| \`${spec.name}\` | \`${type}\` | ${defaultCell(spec)} | ${spec.meaning} |`;
  });
  if (table.inherits !== undefined) rows.push(table.inherits.row);
  return ['| option | type | default | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** The `insteadOf` names of `table` as a Markdown table: name, what to use instead. */
export function formatInsteadOfTable(table: OptionTable): string {
  const rows = Object.entries(table.insteadOf ?? {}).map(
    ([name, instead]) => `| \`${name}\` | ${instead} |`,
  );
  return ['| option | here |', '| --- | --- |', ...rows].join('\n');
}

function defaultCell(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const value = spec.default;
  if (value === undefined) return '—';
  if (typeof value === 'number') {
    if (value >= 1024 * 1024 && value % (1024 * 1024) === 0) return `${value / (1024 * 1024)} MiB`;
    if (value >= 1024 && value % 1024 === 0 && /bytes/i.test(spec.meaning)) {
      return `${value / 1024} KiB`;
    }
    return value.toLocaleString('en-US');
  }
  if (typeof value === 'string') return `\`'${value}'\``;
  return `\`${JSON.stringify(value)}\``;
}

// ---- checks ---------------------------------------------------------------------------------

function check(type: string, expected: string, test: (value: unknown) => boolean): OptionCheck {
  return { type, expected, test };
}

/** Checks for the common kinds of option values. */
export const is = {
  boolean: check('boolean', 'true or false', (v) => typeof v === 'boolean'),
  string: check('string', 'a string', (v) => typeof v === 'string'),
  function: check('function', 'a function', (v) => typeof v === 'function'),
  object: check('object', 'an object', (v) => typeof v === 'object' && v !== null),
  /** A whole number from `min` on (`Infinity` allowed when `infinite`). */
  integer(min: number, infinite = false): OptionCheck {
    return check(
      'number',
      `an integer of at least ${min}${infinite ? ' (or Infinity)' : ''}`,
      (v) =>
        typeof v === 'number' && v >= min && (Number.isInteger(v) || (infinite && v === Infinity)),
    );
  },
  /** A finite number of milliseconds, 0 or more. */
  milliseconds: check(
    'number',
    'a number of milliseconds, 0 or more',
    (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  ),
  /** A whole number from `min` to `max`. */
  range(min: number, max: number): OptionCheck {
    return check(
      'number',
      `an integer from ${min} to ${max}`,
      (v) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max,
    );
  },
  /** One of the given strings. */
  oneOf(values: readonly string[]): OptionCheck {
    return check(
      values.map((v) => `'${v}'`).join(' | '),
      `one of ${values.map((v) => `'${v}'`).join(', ')}`,
      (v) => typeof v === 'string' && values.includes(v),
    );
  },
  /** Any of the checks, for union types. */
  anyOf(type: string, ...checks: OptionCheck[]): OptionCheck {
    return check(type, checks.map((c) => c.expected).join(' or '), (v) =>
      checks.some((c) => c.test(v)),
    );
  },
  /** An array whose every element passes `element`. */
  arrayOf(element: OptionCheck): OptionCheck {
    return check(
      `${element.type}[]`,
      `an array of ${element.type}`,
      (v) => Array.isArray(v) && v.every((e) => element.test(e)),
    );
  },
  /** An object checked against a nested table (`heartbeat`, `perMessageDeflate`...). */
  bag(type: string, table: OptionTable, prefix: string): OptionCheck {
    return check(type, `an object with ${table.owner}'s fields`, (v) => {
      // A bad nested field throws its own, more precise error.
      checkOptions(table, v, `${prefix}.`);
      return true;
    });
  },
  /** Exactly this value. */
  literal(value: boolean | string): OptionCheck {
    return check(JSON.stringify(value), JSON.stringify(value), (v) => v === value);
  },
} as const;
