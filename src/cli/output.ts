// Printing for the CLI: text or --json on stdout, warnings on stderr, and a progress line on
// stderr only when it is a terminal (quiet under cron and pipes). --quiet also drops the summary
// of a command that did its job (info), as restic's does: a cron job then prints only what needs
// a reader (warnings, errors, what is left to do).
export class Output {
  private progressShown = false;
  private lastProgress = 0;
  readonly tty: boolean;

  constructor(readonly json: boolean, readonly quiet: boolean, private readonly out = process.stdout, private readonly err = process.stderr) {
    this.tty = Boolean(err.isTTY) && !json && !quiet;
  }

  /** A line of human-readable output (suppressed with --json). */
  line(text = ''): void {
    if (this.json) return;
    this.clearProgress();
    this.out.write(text + '\n');
  }

  /**
   * A status or summary line of a command that did what it was asked ("snapshot ... saved"):
   * suppressed by --quiet as well. What a user asked to see (listings, a dry run's report) and
   * what still needs doing go through line().
   */
  info(text = ''): void {
    if (!this.quiet) this.line(text);
  }

  /** One JSON document (only with --json). */
  data(doc: unknown): void {
    if (!this.json) return;
    this.out.write(JSON.stringify(doc) + '\n');
  }

  warn(message: string): void {
    this.clearProgress();
    if (this.json) this.err.write(JSON.stringify({ message_type: 'warning', message }) + '\n');
    else this.err.write(`warning: ${message}\n`);
  }

  error(message: string, hint?: string, code?: string): void {
    this.clearProgress();
    if (this.json) this.err.write(JSON.stringify({ message_type: 'error', code, message, hint }) + '\n');
    else this.err.write(`snap: ${message}${hint ? `\n  hint: ${hint}` : ''}\n`);
  }

  /** Redraws the progress line, at most 10 times a second. */
  progress(text: string, force = false): void {
    if (!this.tty) return;
    const now = Date.now();
    if (!force && now - this.lastProgress < 100) return;
    this.lastProgress = now;
    const width = (this.err as { columns?: number }).columns ?? 100;
    this.err.write('\r\x1b[K' + (text.length > width - 1 ? text.slice(0, width - 2) + '…' : text));
    this.progressShown = true;
  }

  clearProgress(): void {
    if (this.progressShown) {
      this.err.write('\r\x1b[K');
      this.progressShown = false;
    }
  }
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[i]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Fixed-width table for text output. */
export function table(rows: string[][], header?: string[]): string[] {
  const all = header ? [header, ...rows] : rows;
  const widths: number[] = [];
  for (const r of all) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const lines = all.map(fmt);
  if (header) lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines;
}
