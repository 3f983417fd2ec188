/**
 * Noticing that a file the proxy reads has changed, by polling its identity (device, inode, size, times) with
 * stat rather than by inotify: polling sees atomic renames and Kubernetes Secret symlink swaps, which replace a
 * file rather than write to it, and works the same on every file system. stat follows symlinks, so a swapped
 * `..data` link shows as a new inode.
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';

export const DEFAULT_POLL_INTERVAL_MS = 1000;

/** A file's identity: any write, rename over it or symlink swap changes it. */
export function versionOf(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`;
}

/** A file that cannot be read has a version too, so one that stays missing is reported once, not at every poll. */
export function errorVersion(err: unknown): string {
  return `unreadable:${(err as NodeJS.ErrnoException).code ?? String(err)}`;
}

/** The current version of each file. */
export async function versionsOf(files: Iterable<string>): Promise<Map<string, string>> {
  const versions = new Map<string, string>();
  await Promise.all(
    [...new Set(files)].map(async (file) => {
      versions.set(file, await stat(file).then(versionOf, errorVersion));
    }),
  );
  return versions;
}

/** The files whose version differs between two snapshots (or that only one of them has). */
export function changedFiles(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): string[] {
  const changed: string[] = [];
  for (const [file, version] of after) if (before.get(file) !== version) changed.push(file);
  for (const file of before.keys()) if (!after.has(file)) changed.push(file);
  return changed;
}

/**
 * Polls a set of files and calls `onChange` once their versions differ from the baseline and have stayed the
 * same for one more poll: a certificate and its key written one after the other (cert-manager, an operator's
 * `cp`) are taken together instead of as a half-changed pair. `onChange` runs one at a time; it returns the files
 * to watch from then on, and the versions it read them at become the baseline, so a change made while it ran is
 * seen at the next poll.
 */
export class FilesWatch {
  private baseline: Map<string, string>;
  private pending: Map<string, string> | undefined;
  private polling = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    baseline: Map<string, string>,
    private readonly onChange: (changed: string[], seen: Map<string, string>) => Promise<Map<string, string>>,
    pollIntervalMs: number = DEFAULT_POLL_INTERVAL_MS,
  ) {
    this.baseline = baseline;
    this.timer = setInterval(() => void this.check(), pollIntervalMs).unref();
  }

  /** The baseline after a reload that did not come from this watch (SIGHUP): what was loaded is what is watched. */
  reset(baseline: Map<string, string>): void {
    this.baseline = baseline;
    this.pending = undefined;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  /** One poll: what the timer runs (tests call it to step the watch). */
  async check(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const current = await versionsOf(this.baseline.keys());
      if (changedFiles(this.baseline, current).length === 0) {
        this.pending = undefined;
        return;
      }
      // Acted on only when a second poll sees the same versions: the change has settled.
      if (!this.pending || changedFiles(this.pending, current).length > 0) {
        this.pending = current;
        return;
      }
      this.pending = undefined;
      const changed = changedFiles(this.baseline, current);
      this.baseline = await this.onChange(changed, current);
    } finally {
      this.polling = false;
    }
  }
}
