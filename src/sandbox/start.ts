/**
 * The built-in sandbox that `npm start` runs with no configuration: local APNs and FCM peers with fresh
 * credentials, and config entries that point the proxy at them through the ordinary code path.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AndroidEntryConfig, AppleEntryConfig } from '../config/types';
import type { PlatformSettings } from '../platforms/registry';
import { redactToken } from '../logging';
import { ApnsPeer } from './apns-peer';
import { FcmPeer } from './fcm-peer';
import { createAppleAuthKey, createGoogleServiceAccount } from './credentials';
import { createCertificateAuthority, createServerCertificate } from '../tls/certificates';

/** The platform types current and older Mattermost apps register, with their bundle ids. */
export const SANDBOX_APPLE_TYPES: ReadonlyArray<{ type: string; topic: string }> = [
  { type: 'apple', topic: 'com.mattermost.Mattermost' },
  { type: 'apple_rn', topic: 'com.mattermost.react.native' },
  { type: 'apple_rnbeta', topic: 'com.mattermost.rnbeta' },
];
export const SANDBOX_ANDROID_TYPES: readonly string[] = ['android', 'android_rn', 'android_rnbeta'];

export interface Sandbox {
  apns: ApnsPeer;
  fcm: FcmPeer;
  /** An entry per sandbox platform type, for each delivery service: what the built-in test configuration serves. */
  settings: PlatformSettings;
  /** The sandbox CA, for the proxy to trust. */
  trustedCa: string[];
  close(): Promise<void>;
}

export async function startSandbox(logger: Logger): Promise<Sandbox> {
  const ca = createCertificateAuthority('Push Proxy Sandbox CA');
  const serverTls = createServerCertificate(ca, ['localhost', '127.0.0.1']);
  const authKey = createAppleAuthKey();

  const apns = new ApnsPeer({
    tls: serverTls,
    tokenKeys: [
      { keyId: authKey.keyId, teamId: authKey.teamId, publicKeyPem: authKey.publicKeyPem, topics: SANDBOX_APPLE_TYPES.map((t) => t.topic) },
    ],
    onNotification: (n) => {
      const aps = (n.payload as { aps?: unknown } | undefined)?.aps;
      logger.info(
        {
          peer: 'sandbox-apns',
          device: redactToken(n.token),
          topic: n.topic,
          push_type: n.headers['apns-push-type'],
          status: n.status,
          reason: n.reason,
          aps_keys: aps && typeof aps === 'object' ? Object.keys(aps) : undefined,
        },
        n.status === 200 ? 'sandbox APNs received a notification' : 'sandbox APNs refused a notification',
      );
    },
  });
  await apns.start();

  const fcm = new FcmPeer({ tls: serverTls });
  await fcm.start();
  const serviceAccount = createGoogleServiceAccount(`${fcm.url}/token`);
  fcm.addServiceAccount(serviceAccount.account.client_email, serviceAccount.publicKeyPem, serviceAccount.account.project_id);
  fcm.onMessage = (m) => {
    logger.info(
      { peer: 'sandbox-fcm', device: redactToken(m.token ?? ''), push_type: m.data?.type, status: m.status, error: m.errorCode },
      m.status === 200 ? 'sandbox FCM received a message' : 'sandbox FCM refused a message',
    );
  };

  // Credentials are files, as an operator's would be: the proxy reads them through the normal path.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'push-proxy-sandbox-'));
  const keyFile = path.join(dir, `AuthKey_${authKey.keyId}.p8`);
  writeFileSync(keyFile, authKey.keyPem, { mode: 0o600 });
  const serviceFile = path.join(dir, 'service-account.json');
  writeFileSync(serviceFile, JSON.stringify(serviceAccount.account, null, 2), { mode: 0o600 });

  const appleEntries: AppleEntryConfig[] = SANDBOX_APPLE_TYPES.map(({ type, topic }) => ({
    Type: type,
    ApplePushUseDevelopment: true,
    ApplePushCertPrivate: '',
    ApplePushCertPassword: '',
    ApplePushTopic: topic,
    AppleAuthKeyFile: keyFile,
    AppleAuthKeyID: authKey.keyId,
    AppleTeamID: authKey.teamId,
    AppleEndpoint: apns.url,
  }));
  const androidEntries: AndroidEntryConfig[] = SANDBOX_ANDROID_TYPES.map((type) => ({
    Type: type,
    ServiceFileLocation: serviceFile,
    AndroidApiKey: '',
    FcmEndpoint: fcm.url,
  }));

  return {
    apns,
    fcm,
    settings: { ApplePushSettings: appleEntries, AndroidPushSettings: androidEntries },
    trustedCa: [ca.certPem],
    async close() {
      await Promise.all([apns.close(), fcm.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
