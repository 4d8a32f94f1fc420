/** Memory and CPU figures of a process, from /proc (Linux). */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

function statusField(pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(match[1]) * 1024;
}

/** Peak resident set size (bytes) since start or since the last `resetPeakRss`. */
export const peakRss = (pid: number | 'self') => statusField(pid, 'VmHWM');
export const currentRss = (pid: number | 'self') => statusField(pid, 'VmRSS');

/** Sets the peak RSS back to the current RSS (Linux ≥ 4.0: "5" to clear_refs). False when not allowed. */
export function resetPeakRss(pid: number | 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

const clockTicks = 100; // USER_HZ: 100 on every Linux architecture Node runs on

/** CPU time (user + system, seconds) a process has used so far, its threads included; or one thread's. */
export function cpuSeconds(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/** CPU time (seconds) of each thread of a process, by thread id (the main thread's id is the pid). */
export function threadCpuSeconds(pid: number): Map<number, number> {
  const threads = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      threads.set(Number(tid), cpuSeconds(pid, Number(tid)));
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return threads;
}

/** CPU time (seconds) all CPUs of the machine spent busy so far (not idle, not waiting for I/O). */
export function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return (user + nice + system + irq + softirq + steal) / clockTicks;
}

/** CPU time (seconds) of this process and of its children that have ended (and been waited for). */
export function ownTreeCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / clockTicks;
}
