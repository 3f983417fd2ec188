/**
 * A configured entry's service with a watch on what its answers say about the entry itself: the REMOVE guard
 * (src/delivery/remove-guard.ts) turns suspect REMOVEs into FAILs while most recent tokens get them, and the
 * entry's health (src/delivery/entry-health.ts) follows whether the provider accepts its credentials. Both
 * read the verdict's `evidence`, which the transport that knows the provider set.
 */
import type { Logger } from 'pino';
import type { PushNotification } from '../notification';
import { EntryHealth } from './entry-health';
import { RemoveGuard, type RemoveGuardSettings } from './remove-guard';
import type { DeliveryContext, DeliveryResult, EntryState, PushService, RemoveGuardStatus, ServicePlatform } from './types';

/** An operator needs the first error, not one per notification: at most one per entry and kind this often. */
export const ENTRY_ERROR_LOG_INTERVAL_MS = 60_000;
/** How often a failed entry's credentials are checked again with a probe (see `WatchedService`). */
export const CREDENTIAL_RECHECK_MS = 60_000;

export interface EntryWatchDeps {
  logger: Logger;
  guard: RemoveGuardSettings;
  /** Hears each withheld REMOVE, with the provider's code. */
  onWithheld?: (type: string, providerReason: string) => void;
  /** Monotonic milliseconds. */
  now?: () => number;
  /**
   * While the entry is failed, this is sent every `recheckMs` (default CREDENTIAL_RECHECK_MS) straight to the
   * service, outside the guard and the dispatcher, to learn whether the provider accepts the credentials again.
   * A failed entry makes /readyz 503 when it is the last one, and then gets no traffic to recover by.
   */
  probe?: PushNotification;
  recheckMs?: number;
}

export class WatchedService implements PushService {
  readonly type: string;
  readonly platform: ServicePlatform;
  readonly transports: ReadonlySet<string>;
  private readonly guard: RemoveGuard;
  private readonly health = new EntryHealth();
  private readonly now: () => number;
  private withheld = 0;
  private guardAdvice: string | undefined;
  private wasSuspect = false;
  private lastGuardLog = -Infinity;
  private lastHealthLog = -Infinity;
  private recheck: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;

  constructor(
    private readonly inner: PushService,
    private readonly deps: EntryWatchDeps,
  ) {
    this.type = inner.type;
    this.platform = inner.platform;
    this.transports = inner.transports;
    this.guard = new RemoveGuard(deps.guard);
    this.now = deps.now ?? (() => performance.now());
  }

  deliver(notification: PushNotification, context: DeliveryContext): Promise<DeliveryResult> {
    return this.inner.deliver(notification, context).then((result) => this.judge(notification.device_id, result));
  }

  preview(notification: PushNotification, context: DeliveryContext): unknown {
    return this.inner.preview(notification, context);
  }

  close(): Promise<void> {
    this.closed = true;
    clearInterval(this.recheck);
    return this.inner.close();
  }

  /** Whether the provider accepts the entry's credentials, as far as its latest answers tell. */
  get up(): boolean {
    return this.health.up;
  }

  /** Whether suspect answers are withheld now. */
  get suspect(): boolean {
    return this.guard.suspect(this.now());
  }

  state(): EntryState {
    const removeGuard = this.guardStatus();
    const failure = this.health.current;
    const guard = removeGuard ? { removeGuard } : {};
    if (failure)
      return {
        type: this.type,
        platform: this.platform,
        state: 'failed',
        reason: failure.advice,
        since: failure.since.toISOString(),
        ...guard,
      };
    return { type: this.type, platform: this.platform, state: 'ready', ...guard };
  }

  private guardStatus(): RemoveGuardStatus | undefined {
    if (!this.guard.settings.enabled) return undefined;
    const now = this.now();
    const suspect = this.guard.suspect(now);
    const { judged, suspect: suspectTokens } = this.guard.counts(now);
    return {
      suspect,
      judgedTokens: judged,
      suspectTokens,
      withheld: this.withheld,
      ...(suspect && this.guardAdvice ? { advice: this.guardAdvice } : {}),
    };
  }

  private judge(token: string, result: DeliveryResult): DeliveryResult {
    const evidence = result.evidence;
    this.judgeCredentials(result);
    if (evidence?.kind === 'credentials-refused') return result;

    const now = this.now();
    if (evidence?.kind === 'suspect') {
      const { withhold } = this.guard.record(token, 'suspect', now);
      this.noticeGuardChange(withhold);
      if (!withhold) return result;
      return this.withhold(result, evidence.advice, now);
    }
    if (result.outcome === 'OK' || result.outcome === 'REMOVE') {
      this.guard.record(token, 'healthy', now);
      this.noticeGuardChange(this.guard.suspect(now));
    }
    return result;
  }

  /** The suspect answer as a FAIL that names the likely cause; the chat server keeps the device token. */
  private withhold(result: DeliveryResult, advice: string, now: number): DeliveryResult {
    const code = result.providerReason ?? result.reason ?? 'unknown';
    const { judged, suspect } = this.guard.counts(now);
    this.guardAdvice = advice;
    if (result.outcome === 'REMOVE') {
      this.withheld++;
      this.deps.onWithheld?.(this.type, code);
    }
    if (now - this.lastGuardLog >= ENTRY_ERROR_LOG_INTERVAL_MS) {
      this.lastGuardLog = now;
      this.deps.logger.error(
        { platform: this.type, provider_reason: code, suspect_tokens: suspect, judged_tokens: judged, withheld: this.withheld },
        `REMOVE withheld for entry "${this.type}": ${advice}`,
      );
    }
    return {
      ...result,
      outcome: 'FAIL',
      error: `${advice} (answered ${code}; ${suspect} of the last ${judged} device tokens got such answers)`,
    };
  }

  private noticeGuardChange(suspect: boolean): void {
    if (this.wasSuspect && !suspect)
      this.deps.logger.info({ platform: this.type }, `REMOVE guard: entry "${this.type}" is answered normally again; REMOVE answers pass`);
    this.wasSuspect = suspect;
  }

  /** Any verdict on the device or message means the provider took our credentials; no answer tells nothing. */
  private judgeCredentials(result: DeliveryResult): void {
    const evidence = result.evidence;
    if (evidence?.kind === 'credentials-refused') this.credentialsRefused(evidence.advice, result);
    else if (result.outcome !== 'FAIL' || evidence !== undefined) this.credentialsAccepted();
  }

  private credentialsRefused(advice: string, result: DeliveryResult): void {
    if (this.health.refused(advice, new Date()) === 'failed') this.startRecheck();
    const now = this.now();
    if (now - this.lastHealthLog >= ENTRY_ERROR_LOG_INTERVAL_MS) {
      this.lastHealthLog = now;
      this.deps.logger.error(
        { platform: this.type, provider_reason: result.providerReason ?? result.reason },
        `entry "${this.type}" failed: ${advice}`,
      );
    }
  }

  private credentialsAccepted(): void {
    if (this.health.accepted() === 'recovered') {
      clearInterval(this.recheck);
      this.recheck = undefined;
      this.deps.logger.info({ platform: this.type }, `entry "${this.type}" is up again: the provider accepted its credentials`);
    }
  }

  private startRecheck(): void {
    const probe = this.deps.probe;
    if (!probe || this.closed || this.recheck) return;
    this.recheck = setInterval(() => {
      if (this.probing) return;
      this.probing = true;
      this.inner
        .deliver(probe, { appVersion: 2 })
        .then((result) => {
          if (!this.closed) this.judgeCredentials(result);
        })
        // A probe that breaks proves nothing either way; the entry stays as it was.
        .catch(() => undefined)
        .finally(() => (this.probing = false));
    }, this.deps.recheckMs ?? CREDENTIAL_RECHECK_MS);
    // A timer of its own must not keep a stopping process alive.
    this.recheck.unref();
  }
}
