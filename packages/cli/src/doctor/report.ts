/** Renders a {@link DoctorReport} for people. */
import type { Style } from '../io.js';
import type { Check, DoctorReport } from './doctor.js';

const MARKS: Record<Check['status'], string> = {
  pass: '✓',
  fail: '✗',
  warn: '!',
  info: 'i',
  skip: '-',
};

function indent(text: string, prefix: string): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}

/** The human report: steps, request and response, checks, follow-ups, then findings with fixes. */
export function renderReport(report: DoctorReport, style: Style): string {
  const out: string[] = [];
  const colour = (status: Check['status']) =>
    status === 'pass'
      ? style.green
      : status === 'fail'
        ? style.red
        : status === 'warn'
          ? style.yellow
          : style.dim;
  const width = Math.max(...report.checks.map((c) => c.name.length), 8);
  const line = (c: Check) =>
    `  ${colour(c.status)(MARKS[c.status])} ${style.bold(c.name.padEnd(width))}  ${c.summary}`;

  out.push(style.bold(`switchyard doctor ${report.url}`));
  if (report.proxy !== null) out.push(style.dim(`  (through the proxy ${report.proxy})`));
  out.push('');
  const before = report.checks.filter((c) =>
    ['DNS', 'Proxy', 'TCP', 'TLS', 'HTTP/2'].includes(c.name),
  );
  const after = report.checks.filter((c) => !before.includes(c));
  for (const c of before) out.push(line(c));
  if (report.request !== null) {
    out.push('', style.bold('  Request sent'), style.cyan(indent(report.request, '    > ')));
  }
  if (report.response !== null) {
    out.push(
      '',
      style.bold(`  Response received (first byte ${report.response.firstByteMs.toFixed(1)} ms)`),
      style.cyan(indent(report.response.head, '    < ')),
    );
    const body = report.response.body.trim();
    if (body !== '') out.push(style.dim(indent(body.slice(0, 400), '    | ')));
  }
  if (after.length > 0) out.push('');
  for (const c of after) out.push(line(c));
  if (report.followUps.length > 0) {
    out.push('', style.bold('  Follow-up attempts'));
    for (const f of report.followUps) {
      out.push(`    • ${f.change}: ${f.outcome} → ${f.conclusion}`);
    }
  }
  out.push('');
  if (report.findings.length === 0) {
    out.push(style.green(style.bold('Healthy: the upgrade, frames and the close handshake work.')));
    return out.join('\n') + '\n';
  }
  for (const f of report.findings) {
    const tag =
      f.severity === 'problem'
        ? style.red('PROBLEM')
        : f.severity === 'warning'
          ? style.yellow('WARNING')
          : style.dim('NOTE');
    out.push(`${tag} ${style.bold(f.title)} ${style.dim(`[${f.id}]`)}`);
    out.push(`  Seen: ${f.evidence}`);
    out.push(`  What it means: ${f.meaning}`);
    out.push('  How to fix it:');
    for (const fix of f.fix) out.push(`    - ${fix}`);
    out.push('');
  }
  out.push(
    report.healthy
      ? style.yellow('Works, with the warnings above.')
      : style.red(
          style.bold(
            `Found ${report.findings.filter((f) => f.severity === 'problem').length} problem(s).`,
          ),
        ),
  );
  return out.join('\n') + '\n';
}
