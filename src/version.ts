/** What `GET /version` and `--version` report. The build hash comes from the image build (PUSH_PROXY_BUILD_HASH). */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface BuildInfo {
  hash: string;
  version: string;
}

export function buildInfo(env: Record<string, string | undefined> = process.env): BuildInfo {
  let version = 'unknown';
  try {
    // dist/src/version.js → package.json at the project root.
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: string };
    version = pkg.version ?? version;
  } catch {
    // Reported as unknown, as the original's unbuilt default.
  }
  const hash = env.PUSH_PROXY_BUILD_HASH || 'unknown';
  return { hash, version: `${version}+${hash}` };
}
