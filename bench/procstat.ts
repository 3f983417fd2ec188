/**
 * CPU time and peak memory of a process and all its descendants, from /proc (Linux only).
 *
 * CPU: utime + stime + cutime + cstime of every live process in the tree. A child that exits and is reaped
 * moves its time into its parent's cutime/cstime, so the sum stays continuous; deltas between two samples
 * are what the tree spent in between, threads (libuv pool, GC) included.
 * Peak RSS: VmHWM of every process in the tree, summed; `resetPeaks` starts a new peak (clear_refs "5").
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

export function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface StatLine {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime, in clock ticks */
  ticks: number;
}

function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may hold spaces: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
  const num = (field: number): number => Number(fields[field - 3]);
  return { pid, ppid: num(4), ticks: num(14) + num(15) + num(16) + num(17) };
}

/** `root` and every descendant alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(stat.pid);
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0 && tree.length < 10_000) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** CPU seconds the tree has used so far. */
export function treeCpuSeconds(root: number): number {
  let ticks = 0;
  for (const pid of processTree(root)) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / clockTicks();
}

function statusKb(pid: number, key: string): number {
  try {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of the tree now, in MB (sum of each process's VmRSS). */
export function treeRssMb(root: number): number {
  let kb = 0;
  for (const pid of processTree(root)) kb += statusKb(pid, 'VmRSS');
  return kb / 1024;
}

/** Peak resident memory of the tree in MB (sum of each process's VmHWM). */
export function treePeakRssMb(root: number): number {
  let kb = 0;
  for (const pid of processTree(root)) kb += statusKb(pid, 'VmHWM');
  return kb / 1024;
}

/** Starts a new peak for every process in the tree; false when the kernel refused. */
export function resetPeaks(root: number): boolean {
  let ok = true;
  for (const pid of processTree(root)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}
