/**
 * Run in a child process by tls-trust.test.ts, because Node reads NODE_EXTRA_CA_CERTS once, when the process
 * starts: a proxy that, as in test mode, trusts CAs of peers it was handed besides Node's store.
 *
 * argv[2]: JSON { apple, trustedCa } (AppleEntryConfigs, the CAs passed as the proxy's own peers'). Prints
 * `{"url": …}` as one line once listening; closes and exits on SIGTERM.
 */
import type { AppleEntryConfig } from '../src/config/types';
import { startTestProxy, testConfig } from './support';

async function main(): Promise<void> {
  const { apple, trustedCa } = JSON.parse(process.argv[2]!) as { apple: AppleEntryConfig[]; trustedCa: string[] };
  const proxy = await startTestProxy(testConfig({ apple, SendTimeoutSec: 2, RetryTimeoutSec: 1 }), trustedCa);
  process.once('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ url: proxy.url })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
