/**
 * Hosted mode's tenants as the running proxy sees them: who may send, with which key, for which servers and
 * platforms, at what rate. TenantStore is the one object the rest of the proxy holds (src/instance.ts opens and closes
 * it, src/http/access.ts asks it about each request); it puts together the pieces, each in its own file: the file's
 * format (file.ts), reading it again when it changes (reload.ts), checking a presented key (auth.ts) and the cache of
 * keys already checked (key-cache.ts). It also keeps the statistics and writes the log lines about loading the file.
 */
import type { Logger } from 'pino';
import { LoadedTenants, parseAuthorization, type Tenant, type TenantAuth } from './auth';
import type { TenantsFileData } from './file';
import { DEFAULT_CACHE_SIZE } from './key-cache';
import { readTenantsFile, TenantsFileWatcher, type TenantsFileRead } from './reload';

export interface TenantStoreOptions {
  logger: Logger;
  /** How often the file is checked for changes; polling with stat, not inotify, sees atomic renames and Secret symlink swaps. */
  pollIntervalMs?: number;
  /** Bound on each credential cache (verified and failed); at least 1. */
  cacheSize?: number;
}

export interface TenantStoreStats {
  /** scrypt computations since open: the expensive part, which the caches exist to avoid. */
  hashVerifications: number;
  reloads: number;
  failedReloads: number;
  cachedCredentials: number;
  cachedFailures: number;
}

export class TenantStore {
  /** The version of the file in force, with its cache; replaced whole on reload. */
  private loaded: LoadedTenants;
  private readonly counters = { hashVerifications: 0, reloads: 0, failedReloads: 0 };
  private readonly watcher: TenantsFileWatcher;

  private constructor(
    private readonly file: string,
    read: TenantsFileRead,
    private readonly logger: Logger,
    private readonly cacheSize: number,
    pollIntervalMs: number | undefined,
  ) {
    this.loaded = this.load(read.data);
    this.logLoaded('tenants loaded');
    this.watcher = new TenantsFileWatcher(
      file,
      read.version,
      { install: (data) => this.install(data), refuse: (problem) => this.refuse(problem) },
      pollIntervalMs,
    );
  }

  /** Reads and validates the file (ConfigError if it cannot be used), then polls it for changes. */
  static async open(file: string, options: TenantStoreOptions): Promise<TenantStore> {
    const read = await readTenantsFile(file);
    return new TenantStore(file, read, options.logger, options.cacheSize ?? DEFAULT_CACHE_SIZE, options.pollIntervalMs);
  }

  get size(): number {
    return this.loaded.list.length;
  }

  tenants(): readonly Tenant[] {
    return this.loaded.list;
  }

  get stats(): TenantStoreStats {
    return { ...this.counters, cachedCredentials: this.loaded.cache.verifiedCount, cachedFailures: this.loaded.cache.failedCount };
  }

  /**
   * The tenant the Authorization header proves the request is from (the forms accepted: parseAuthorization in
   * auth.ts). A key seen before under the current file costs a hash lookup; a new one, one scrypt per key of its
   * tenant at most.
   */
  async authenticate(authorization: string | undefined): Promise<TenantAuth> {
    const presented = parseAuthorization(authorization);
    if ('reason' in presented) return { ok: false, reason: presented.reason };
    const loaded = this.loaded;
    const result = await loaded.authenticate(presented);
    // A reload during the scrypt may have revoked this key: answer from the file now in force.
    return loaded === this.loaded ? result : this.loaded.authenticate(presented);
  }

  /** The tenant's server_id and platform restrictions; the error is meant for the FAIL answer's `error`. */
  allows(tenant: Tenant, request: { serverId: string; platformType: string }): { ok: true } | { ok: false; error: string } {
    if (tenant.serverIds && !tenant.serverIds.includes(request.serverId)) {
      return { ok: false, error: `Failed because server_id ${JSON.stringify(request.serverId)} is not allowed for tenant "${tenant.id}"` };
    }
    if (tenant.platforms && !tenant.platforms.includes(request.platformType)) {
      return {
        ok: false,
        error: `Failed because platform ${JSON.stringify(request.platformType)} is not allowed for tenant "${tenant.id}"`,
      };
    }
    return { ok: true };
  }

  /** Re-reads the file now (polling calls this on a change); false, with the old tenants kept, if it is unusable. */
  reload(): Promise<boolean> {
    return this.watcher.reload();
  }

  /** Stops polling; authentication keeps working on the tenants loaded last. */
  close(): void {
    this.watcher.close();
  }

  private load(data: TenantsFileData): LoadedTenants {
    return new LoadedTenants(data, this.cacheSize, {
      logger: this.logger,
      countHashVerification: () => this.counters.hashVerifications++,
    });
  }

  /**
   * One assignment, so requests under way keep the version they started with. The new version starts with an empty
   * cache: every key is checked again against it, and a key it revokes is refused at once, even one verified before.
   */
  private install(data: TenantsFileData): void {
    this.loaded = this.load(data);
    this.counters.reloads++;
    this.logLoaded('tenants reloaded');
  }

  private refuse(problem: Error): void {
    this.counters.failedReloads++;
    this.logger.error(
      { file: this.file, tenants: this.size, problem: problem.message },
      'TenantsFile reload failed: keeping the tenants loaded before',
    );
  }

  private logLoaded(message: string): void {
    const active = this.loaded.list.filter((t) => !t.revoked).length;
    this.logger.info({ file: this.file, tenants: this.size, active }, message);
    if (active === 0) this.logger.warn({ file: this.file }, 'TenantsFile has no active tenant: every request will be refused');
  }
}
