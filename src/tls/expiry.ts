/**
 * Certificates that expire (APNs client certificates, the inbound TLS certificate): when to warn about them.
 * `expiryNotice` is the pure rule; `CertificateExpiryWatch` applies it on a timer the instance owns.
 */
import type { Logger } from 'pino';

const DAY_MS = 86_400_000;
/** Warnings start this many days ahead and come again, sooner than daily, as each of these is crossed. */
export const EXPIRY_WARNING_DAYS = [30, 7, 1] as const;
/** How often the watch looks: a threshold is noticed within this time of being crossed. */
export const EXPIRY_CHECK_INTERVAL_MS = 3_600_000;

/** How close a certificate is to its end: within N days (one of EXPIRY_WARNING_DAYS), or expired. */
export type ExpiryStage = (typeof EXPIRY_WARNING_DAYS)[number] | 'expired';

/** The last notice logged about a certificate: when (Unix ms) and at which stage. */
export interface LastExpiryNotice {
  at: number;
  stage: ExpiryStage;
}

/** Where a certificate stands at `now` (Unix ms): undefined while more than the first threshold away. */
export function expiryStage(now: number, notAfter: number): ExpiryStage | undefined {
  const left = notAfter - now;
  if (left <= 0) return 'expired';
  let stage: ExpiryStage | undefined;
  for (const days of EXPIRY_WARNING_DAYS) if (left <= days * DAY_MS) stage = days;
  return stage;
}

/**
 * The notice due at `now`, if any. The rule: within 30 days of the end, say so once a day; say it at once,
 * whatever the time since the last one, when the certificate crosses 7 days, 1 day, or its end.
 */
export function expiryNotice(now: number, notAfter: number, last: LastExpiryNotice | undefined): ExpiryStage | undefined {
  const stage = expiryStage(now, notAfter);
  if (stage === undefined) return undefined;
  if (!last || last.stage !== stage || now - last.at >= DAY_MS) return stage;
  return undefined;
}

/** A certificate the watch looks after: its name in logs and metrics, its end, and what renewing it takes. */
export interface WatchedCertificate {
  name: string;
  notAfter: Date;
  renewal: string;
}

/** Logs each certificate's due notices: a warning while within 30 days, an error once expired. */
export class CertificateExpiryWatch {
  private readonly last = new Map<string, LastExpiryNotice>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private certificates: readonly WatchedCertificate[],
    private readonly logger: Logger,
    /** Wall-clock Unix milliseconds: certificates end at a date, not after a duration. */
    private readonly now: () => number = Date.now,
  ) {}

  /** Checks now, then every `intervalMs`, on a timer that never keeps the process alive. */
  start(intervalMs = EXPIRY_CHECK_INTERVAL_MS): void {
    this.check();
    this.timer = setInterval(() => this.check(), intervalMs).unref();
  }

  /**
   * The certificates a reload loaded, checked at once. A certificate whose end is unchanged keeps its last notice
   * (a reload does not repeat today's warning); a renewed one starts afresh.
   */
  replace(certificates: readonly WatchedCertificate[]): void {
    const ends = new Map(certificates.map((c) => [c.name, c.notAfter.getTime()]));
    const before = new Map(this.certificates.map((c) => [c.name, c.notAfter.getTime()]));
    for (const name of [...this.last.keys()]) if (ends.get(name) !== before.get(name)) this.last.delete(name);
    this.certificates = certificates;
    this.check();
  }

  check(): void {
    const now = this.now();
    for (const certificate of this.certificates) {
      const notAfter = certificate.notAfter.getTime();
      const stage = expiryNotice(now, notAfter, this.last.get(certificate.name));
      if (stage === undefined) continue;
      this.last.set(certificate.name, { at: now, stage });
      const fields = { certificate: certificate.name, not_after: certificate.notAfter.toISOString() };
      if (stage === 'expired') {
        this.logger.error(fields, `certificate ${certificate.name} expired on ${fields.not_after}: ${certificate.renewal}`);
      } else {
        const days = Math.ceil((notAfter - now) / DAY_MS);
        this.logger.warn(
          { ...fields, days_left: days },
          `certificate ${certificate.name} expires on ${fields.not_after}, in ${days} day(s): ${certificate.renewal}`,
        );
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
