/** Where a progress bar draws: a terminal stream (stderr), or anything that writes text. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/**
 * A one-line progress bar redrawn in place with `\r`, at most every `intervalMs`. It draws only
 * on a TTY: piped or redirected output gets no control characters and no noise.
 */
export class ProgressBar {
  readonly #stream: ProgressStream;
  readonly #label: string;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #enabled: boolean;
  #total: number;
  #done = 0;
  #lastDraw = -Infinity;
  #drawn = false;
  /** Recent (time, bytes) samples for the rate: the last few seconds, not the whole run. */
  #samples: [number, number][] = [];

  constructor(stream: ProgressStream, label: string, total: number, options: { intervalMs?: number; now?: () => number; force?: boolean } = {}) {
    this.#stream = stream;
    this.#label = label;
    this.#total = total;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#now = options.now ?? Date.now;
    this.#enabled = options.force ?? stream.isTTY === true;
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  update(done: number, total: number = this.#total): void {
    this.#done = done;
    this.#total = total;
    const now = this.#now();
    this.#samples.push([now, done]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > 5000) this.#samples.shift();
    if (!this.#enabled) return;
    if (done < total && now - this.#lastDraw < this.#intervalMs) return;
    this.#lastDraw = now;
    this.#draw();
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (!this.#enabled) return;
    this.#draw();
    this.#stream.write('\n');
    this.#drawn = false;
  }

  /** Erases the bar (before printing a message on the same stream). */
  clear(): void {
    if (!this.#enabled || !this.#drawn) return;
    this.#stream.write('\r\x1b[2K');
    this.#drawn = false;
  }

  render(): string {
    const total = this.#total;
    const fraction = total > 0 ? Math.min(1, this.#done / total) : 1;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    const seconds = first && last ? (last[0] - first[0]) / 1000 : 0;
    const rate = seconds > 0 ? (last![1] - first![1]) / seconds : 0;
    const eta = rate > 0 ? (total - this.#done) / rate : NaN;
    const stats = `${percent} ${formatBytes(this.#done)}/${formatBytes(total)} ${rate > 0 ? `${formatBytes(rate)}/s` : ''} ETA ${this.#done >= total ? '0:00' : formatDuration(eta)}`;
    const columns = this.#stream.columns ?? 80;
    const width = Math.max(10, Math.min(40, columns - this.#label.length - stats.length - 5));
    const filled = Math.round(fraction * width);
    return `${this.#label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${stats}`.slice(0, Math.max(columns - 1, 20));
  }

  #draw(): void {
    this.#stream.write(`\r\x1b[2K${this.render()}`);
    this.#drawn = true;
  }
}
