/**
 * A small SVG line-chart writer for the bench's scaling curves, with no dependency: the curves
 * are a handful of points per server, and a plotting library in the bench would be more code to
 * trust than these hundred lines. Log-scaled x (connection counts grow by 10×), linear y from 0.
 *
 * Usage: `node --import tsx bench/svg.ts bench/results/<file>.json [outdir]` redraws the charts of
 * a report (default outdir: bench/charts); `npm run bench` calls {@link writeCharts} itself.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One curve of a report: y measured at each x, per server. */
export interface Curve {
  name: string;
  title: string;
  xLabel: string;
  unit: string;
  points: Array<{ x: number; values: Record<string, number> }>;
}

const COLORS: Record<string, string> = {
  switchyard: '#d62728',
  ws: '#1f77b4',
  'ws-native': '#17becf',
  bun: '#ff7f0e',
  floor: '#7f7f7f',
};

const escape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function label(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

/** Renders one curve as a standalone SVG document. */
export function renderChart(curve: Curve, titles: Record<string, string> = {}): string {
  const W = 640;
  const H = 360;
  const L = 70;
  const R = 150;
  const T = 40;
  const B = 50;
  const xs = curve.points.map((p) => p.x);
  const names = [...new Set(curve.points.flatMap((p) => Object.keys(p.values)))];
  const ys = curve.points.flatMap((p) => Object.values(p.values)).filter(Number.isFinite);
  const yMax = niceMax(Math.max(0, ...ys));
  const x0 = Math.log10(Math.min(...xs));
  const x1 = Math.log10(Math.max(...xs));
  const px = (x: number) => L + (x1 === x0 ? 0.5 : (Math.log10(x) - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => T + (1 - y / yMax) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escape(curve.title)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    out.push(
      `<line x1="${L}" x2="${W - R}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`,
      `<text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${label(y)}</text>`,
    );
  }
  for (const x of xs) {
    out.push(
      `<line x1="${px(x)}" x2="${px(x)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`,
      `<text x="${px(x)}" y="${H - B + 16}" text-anchor="middle">${label(x)}</text>`,
    );
  }
  out.push(
    `<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">${escape(curve.xLabel)} (log scale)</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${escape(curve.unit)}</text>`,
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`,
  );
  names.forEach((name, i) => {
    const color = COLORS[name] ?? '#2ca02c';
    const pts = curve.points
      .filter((p) => Number.isFinite(p.values[name]))
      .map((p) => `${px(p.x).toFixed(1)},${py(p.values[name]).toFixed(1)}`);
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>`,
      );
    for (const p of pts) {
      const [cx, cy] = p.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`);
    }
    const ly = T + 10 + i * 18;
    out.push(
      `<line x1="${W - R + 12}" x2="${W - R + 32}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${W - R + 38}" y="${ly + 4}">${escape(titles[name] ?? name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes `<outdir>/<curve name>.svg` for every curve of a report; returns the files. */
export function writeCharts(report: Record<string, unknown>, outdir: string): string[] {
  const curves = (report.curves ?? []) as Curve[];
  const titles = Object.fromEntries(
    ((report.targets ?? []) as Array<{ name: string; title: string }>).map((t) => [
      t.name,
      t.title,
    ]),
  );
  mkdirSync(outdir, { recursive: true });
  return curves
    .filter((c) => c.points.length > 0)
    .map((c) => {
      const file = join(outdir, `${c.name}.svg`);
      writeFileSync(file, renderChart(c, titles));
      return file;
    });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, outdir] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node --import tsx bench/svg.ts <report.json> [outdir]');
    process.exit(2);
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const report = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  for (const f of writeCharts(report, outdir ?? join(here, 'charts'))) console.log(f);
}
