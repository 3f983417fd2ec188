/** docs/protocol.md, Platform string and app version: `apple_rn-v2` → type `apple_rn`, app version 2. */

export interface ParsedPlatform {
  readonly type: string;
  readonly appVersion: number;
}

const GO_INT = /^[+-]?\d+$/;

export function parsePlatform(platform: string): ParsedPlatform {
  const at = platform.indexOf('-v');
  if (at < 0) return { type: platform, appVersion: 1 };
  const suffix = platform.slice(at + 2);
  // strconv.Atoi: optional sign, decimal digits, within int64; anything else keeps version 1.
  let appVersion = 1;
  if (GO_INT.test(suffix)) {
    const n = BigInt(suffix);
    if (n >= -(2n ** 63n) && n < 2n ** 63n) appVersion = Number(n);
  }
  return { type: platform.slice(0, at), appVersion };
}

/** The by-app-version metric's label: `1`, `2` or `other`. */
export function appVersionLabel(appVersion: number): string {
  return appVersion === 1 || appVersion === 2 ? String(appVersion) : 'other';
}
