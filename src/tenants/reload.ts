/**
 * Reading the tenants file, and reading it again whenever it changes, so that `push-proxy tenants add|revoke` (or a
 * Kubernetes Secret update) takes effect in a running proxy without a restart. Changes are found by polling the
 * file's identity (device, inode, size, times) with stat, not by inotify: polling sees atomic renames and Secret
 * symlink swaps, which replace the file rather than write to it. Each version of the file is read once, reloads
 * never overlap, and what to do with a file read (install it, or keep the old one and log why) is the caller's.
 */
import { open as openFile, stat } from 'node:fs/promises';
import { ConfigError } from '../config/errors';
import { parseTenantsFile, type TenantsFileData } from './file';
import { DEFAULT_POLL_INTERVAL_MS, errorVersion, versionOf } from '../reload/file-watch';

/** A parsed file and the version of it that was read. */
export interface TenantsFileRead {
  data: TenantsFileData;
  version: string;
}

/** What a watcher does with what it reads; called one at a time, in the order the versions were read. */
export interface ReloadHandlers {
  /** A changed file parsed: use it from now on. */
  install(data: TenantsFileData): void;
  /** A changed file could not be read or parsed (a ConfigError saying why): keep what is in use. */
  refuse(problem: Error): void;
}

/** The first read, at start-up: a ConfigError (so exit code 2) if the file is missing, unreadable or invalid. */
export async function readTenantsFile(file: string): Promise<TenantsFileRead> {
  let read: { text: string; version: string };
  try {
    read = await readVersioned(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(
        `TenantsFile ${file} does not exist. Create it with "push-proxy tenants add <tenant-id>", or point TenantsFile at the tenants file.`,
      );
    }
    throw new ConfigError(`TenantsFile ${file} cannot be read (${code ?? (err as Error).message}). Check its path and permissions.`);
  }
  return { data: parseTenantsFile(read.text, file), version: read.version };
}

/** Polls one file from the version read at start-up on, and hands each new version to its handlers. */
export class TenantsFileWatcher {
  /** Which version of the file was last read, loaded or refused: each version is read once. */
  private seenVersion: string;
  private reloading: Promise<boolean> = Promise.resolve(true);
  private polling = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly file: string,
    readVersion: string,
    private readonly handlers: ReloadHandlers,
    pollIntervalMs: number = DEFAULT_POLL_INTERVAL_MS,
  ) {
    this.seenVersion = readVersion;
    // Not fs.watchFile: it takes its baseline asynchronously, so a change between our read and that baseline would
    // go unseen. Comparing with the version actually read cannot miss one.
    this.timer = setInterval(() => void this.poll(), pollIntervalMs).unref();
  }

  /** Re-reads the file now (polling calls this on a change); false if it was unusable, or the watcher is closed. */
  reload(): Promise<boolean> {
    // Serialised, so a slow read cannot install an older file over a newer one.
    const next = this.reloading.then(() => this.loadFile());
    this.reloading = next;
    return next;
  }

  /** Stops polling; a reload asked for after this does nothing. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const current = await stat(this.file).then(versionOf, errorVersion);
      if (current !== this.seenVersion) await this.reload();
    } finally {
      this.polling = false;
    }
  }

  private async loadFile(): Promise<boolean> {
    if (this.closed) return false;
    let data: TenantsFileData;
    try {
      const read = await readVersioned(this.file).catch((err: unknown) => {
        // Remembered as a version too, so a file that stays missing is reported once, not at every poll.
        this.seenVersion = errorVersion(err);
        throw new ConfigError(`TenantsFile ${this.file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      });
      this.seenVersion = read.version;
      data = parseTenantsFile(read.text, this.file);
    } catch (err) {
      this.handlers.refuse(err as Error);
      return false;
    }
    // Parsed in full before it is handed over: requests under way keep the tenants they started with.
    this.handlers.install(data);
    return true;
  }
}

/** The content and the identity of what was read, from the same open file: a later swap cannot mix them up. */
async function readVersioned(file: string): Promise<{ text: string; version: string }> {
  const handle = await openFile(file, 'r');
  try {
    const version = versionOf(await handle.stat());
    return { text: await handle.readFile('utf8'), version };
  } finally {
    await handle.close();
  }
}
