/**
 * Run in a child process by fcm-delivery.test.ts, because node:test itself keeps promise tracking on: sends
 * through an Android service to the test's FCM peer and prints, as one JSON line, whether Node tracked every
 * promise's async context before, during and after the attempts.
 *
 * argv[2]: JSON { entry, ca, budgets, slow, fast } (an AndroidEntryConfig, the peer's CA, the test's send and
 * retry budgets, two PushNotifications).
 */
import { AsyncLocalStorage, executionAsyncResource } from 'node:async_hooks';
import pino from 'pino';
import type { AndroidEntryConfig } from '../src/config/types';
import type { PushNotification } from '../src/notification';
import { createAndroidService } from '../src/platforms/fcm';

/** Inside a reaction the current resource is the reaction's own promise only while promises are tracked. */
function promisesTracked(): Promise<boolean> {
  return Promise.resolve().then(() => executionAsyncResource() instanceof Promise);
}

/** Whether an enabled AsyncLocalStorage tracks promises on this Node (Node 24 builds it on AsyncContextFrame). */
async function storageTracksPromises(): Promise<boolean> {
  const storage = new AsyncLocalStorage();
  storage.run({}, () => undefined);
  const tracked = await promisesTracked();
  storage.disable();
  return tracked;
}

async function main(): Promise<void> {
  const { entry, ca, budgets, slow, fast } = JSON.parse(process.argv[2]!) as {
    entry: AndroidEntryConfig;
    ca: string;
    budgets: { sendTimeoutMs: number; retryTimeoutMs: number };
    slow: PushNotification;
    fast: PushNotification;
  };
  const result = createAndroidService(entry, { logger: pino({ level: 'silent' }), ...budgets, trustedCa: [ca] });
  if (!('service' in result)) throw new Error(`no service: ${result.skipped}`);
  const service = result.service;
  const storageTracks = await storageTracksPromises();
  const before = await promisesTracked();
  const slowDelivery = service.deliver(slow, { appVersion: 2 });
  const duringSlow = await promisesTracked();
  const fastOutcome = (await service.deliver(fast, { appVersion: 2 })).outcome;
  const afterFast = await promisesTracked();
  const slowReason = (await slowDelivery).reason;
  const afterAll = await promisesTracked();
  await service.close();
  process.stdout.write(`${JSON.stringify({ storageTracks, before, duringSlow, fastOutcome, afterFast, slowReason, afterAll })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
