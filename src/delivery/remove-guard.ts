/**
 * The REMOVE guard's judgement, pure: a window of the last distinct device tokens one configured entry sent
 * to, each with the kind of answer it last got. Some device refusals (APNs BadDeviceToken, FCM
 * SENDER_ID_MISMATCH, …) also come, for every token, from the entry's own misconfiguration; answering REMOVE
 * to each would make every chat server forget every device. The rule: a suspect answer is withheld (FAIL,
 * not REMOVE) when the window holds at least `minSuspect` suspect tokens, this one included, and they are at
 * least `ratio` of the tokens in the window. A few truly dead tokens among healthy traffic never reach that
 * share; a misconfigured entry reaches it after `minSuspect - 1` REMOVEs.
 *
 * Written by hand rather than with lru-cache: the window needs a running count of suspect tokens kept in
 * step with every eviction (by size and by age), which a Map in insertion order gives in a few lines.
 */
import type { ProxyConfig } from '../config/types';

export interface RemoveGuardSettings {
  enabled: boolean;
  /** How many distinct device tokens the window holds. */
  window: number;
  /** Suspect tokens needed in the window, the current one included, before suspect answers are withheld. */
  minSuspect: number;
  /** Share of the window's tokens that must be suspect, 0–1. */
  ratio: number;
  /** Answers older than this leave the window. */
  maxAgeMs: number;
}

/** How a token's latest answer counts: `healthy` = the provider knows the device (delivered, Unregistered). */
export type TokenVerdict = 'healthy' | 'suspect';

interface Judged {
  verdict: TokenVerdict;
  at: number;
}

export class RemoveGuard {
  /** Token → its latest verdict; insertion order is age order (a token judged again moves to the end). */
  private readonly tokens = new Map<string, Judged>();
  /** The entry judged last, at the end of `tokens`. */
  private newest: Judged | undefined;
  private suspects = 0;

  constructor(readonly settings: RemoveGuardSettings) {}

  /**
   * Records a token's answer at `now` (milliseconds, monotonic). For a suspect answer, says whether its
   * REMOVE must be withheld; a healthy answer never is.
   */
  record(token: string, verdict: TokenVerdict, now: number): { withhold: boolean } {
    if (!this.settings.enabled) return { withhold: false };
    const previous = this.tokens.get(token);
    if (previous !== undefined && previous === this.newest) {
      // Judged last already (notifications to one device in a row): it stays at the end, updated in place. A
      // Map's delete and set again would cost more than the rest of the guard, its table rebuilt every few.
      if (previous.verdict === 'suspect') this.suspects--;
      previous.verdict = verdict;
      previous.at = now;
    } else {
      if (previous !== undefined) {
        this.tokens.delete(token);
        if (previous.verdict === 'suspect') this.suspects--;
      }
      this.tokens.set(token, (this.newest = { verdict, at: now }));
    }
    if (verdict === 'suspect') this.suspects++;
    this.expire(now);
    return { withhold: verdict === 'suspect' && this.isSuspect() };
  }

  /** Whether the window as it stands at `now` meets the rule: the entry is suspect. */
  suspect(now: number): boolean {
    if (!this.settings.enabled) return false;
    this.expire(now);
    return this.isSuspect();
  }

  /** Distinct tokens in the window and how many of them are suspect, at `now`. */
  counts(now: number): { judged: number; suspect: number } {
    this.expire(now);
    return { judged: this.tokens.size, suspect: this.suspects };
  }

  private isSuspect(): boolean {
    return this.suspects > 0 && this.suspects >= this.settings.minSuspect && this.suspects >= this.settings.ratio * this.tokens.size;
  }

  /** Drops the oldest beyond the window's size, and every answer older than the age limit. */
  private expire(now: number): void {
    const oldest = now - this.settings.maxAgeMs;
    for (const [token, judged] of this.tokens) {
      if (this.tokens.size <= this.settings.window && judged.at >= oldest) break;
      this.tokens.delete(token);
      if (judged.verdict === 'suspect') this.suspects--;
    }
  }
}

/** `RemoveGuard` from the config, with the schema's defaults for a config built without it. */
export function removeGuardSettings(config: Pick<ProxyConfig, 'RemoveGuard'>): RemoveGuardSettings {
  const settings = config.RemoveGuard ?? {};
  return {
    enabled: settings.Enabled ?? true,
    window: settings.Window ?? 100,
    minSuspect: settings.MinSuspect ?? 5,
    ratio: settings.Ratio ?? 0.5,
    maxAgeMs: (settings.MaxAgeSec ?? 3600) * 1000,
  };
}
