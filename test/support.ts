/** Shared test scaffolding: sandbox peers with fresh credentials, an in-process proxy, a captured log. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { parseConfig } from '../src/config/load';
import type { AndroidEntryConfig, AppleEntryConfig, ProxyConfig } from '../src/config/types';
import { startInstance, type ProxyInstance, type StartOptions } from '../src/instance';
import { ApnsPeer, type ApnsPeerOptions } from '../src/sandbox/apns-peer';
import { createAppleAuthKey, type AppleAuthKey } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate, type CertificateAuthority, type PemPair } from '../src/tls/certificates';
import { tempDir, writeTemp } from './unit-support';

export { capturedLogger, mostGrowingEmojiCode, tempDir, writeTemp } from './unit-support';

export const APPLE_TOKEN = 'a1'.repeat(32);
export const TOPIC = 'com.mattermost.react.native';

export interface ApnsFixture {
  ca: CertificateAuthority;
  serverTls: PemPair;
  authKey: AppleAuthKey;
  keyFile: string;
  dir: string;
  peer: ApnsPeer;
  /** An Apple entry using token auth against the peer. */
  entry(overrides?: Partial<AppleEntryConfig>): AppleEntryConfig;
  close(): Promise<void>;
}

/**
 * The CA and server certificate of every APNs fixture without a CA of its own, made once per test process: each
 * RSA key costs about a quarter of a second of CPU, and no test tells two fixtures apart by their CA (a test that
 * needs a stranger's CA makes one). The Apple auth key stays fresh for each fixture.
 */
let sharedTls: { ca: CertificateAuthority; serverTls: PemPair } | undefined;

function fixtureTls(ca: CertificateAuthority | undefined): { ca: CertificateAuthority; serverTls: PemPair } {
  if (ca) return { ca, serverTls: createServerCertificate(ca, ['localhost', '127.0.0.1']) };
  if (!sharedTls) {
    const shared = createCertificateAuthority();
    sharedTls = { ca: shared, serverTls: createServerCertificate(shared, ['localhost', '127.0.0.1']) };
  }
  return sharedTls;
}

export async function startApnsFixture(
  options: { ca?: CertificateAuthority; clientCaPem?: string; topics?: string[]; peer?: Partial<ApnsPeerOptions> } = {},
): Promise<ApnsFixture> {
  const { ca, serverTls } = fixtureTls(options.ca);
  const authKey = createAppleAuthKey();
  const dir = tempDir();
  const keyFile = writeTemp(dir, `AuthKey_${authKey.keyId}.p8`, authKey.keyPem);
  const peer = new ApnsPeer({
    tls: serverTls,
    tokenKeys: [{ keyId: authKey.keyId, teamId: authKey.teamId, publicKeyPem: authKey.publicKeyPem, topics: options.topics ?? [TOPIC] }],
    clientCaPem: options.clientCaPem ?? ca.certPem,
    ...options.peer,
  });
  await peer.start();
  return {
    ca,
    serverTls,
    authKey,
    keyFile,
    dir,
    peer,
    entry: (overrides = {}) => ({
      Type: 'apple_rn',
      ApplePushUseDevelopment: true,
      ApplePushCertPrivate: '',
      ApplePushCertPassword: '',
      ApplePushTopic: TOPIC,
      AppleAuthKeyFile: keyFile,
      AppleAuthKeyID: authKey.keyId,
      AppleTeamID: authKey.teamId,
      AppleEndpoint: peer.url,
      ...overrides,
    }),
    close: () => peer.close(),
  };
}

export function testConfig(patch: { apple?: AppleEntryConfig[]; android?: AndroidEntryConfig[] } & Record<string, unknown>): ProxyConfig {
  const { apple = [], android = [], ...rest } = patch;
  const { config } = parseConfig({ ListenAddress: '127.0.0.1:0', EnableMetrics: true, ...rest }, 'test', {}, 'eas');
  config.ApplePushSettings = apple;
  config.AndroidPushSettings = android;
  return config;
}

export async function startTestProxy(
  config: ProxyConfig,
  trustedCa: string[],
  logger?: Logger,
  options: Pick<StartOptions, 'clock'> = {},
): Promise<ProxyInstance> {
  return startInstance(config, {
    logger: logger ?? pino({ level: 'silent' }),
    trustedCa,
    listen: { host: '127.0.0.1', port: 0 },
    ...options,
  });
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** POST as a Mattermost server does: no Content-Type, its User-Agent. */
export async function post(url: string, body: string | object, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const response = await fetch(url, {
    method: 'POST',
    // Bytes, not a string: fetch would add a Content-Type, and Mattermost servers send none.
    body: new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body)),
    headers: { 'User-Agent': 'Mattermost-Bot/1.1', ...headers },
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

export async function get(url: string, method = 'GET'): Promise<HttpAnswer> {
  const response = await fetch(url, { method });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A request handler served on a loopback port, and how to close it with every connection it holds. */
export async function serveOnLoopback(handler: http.RequestListener): Promise<{ base: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
