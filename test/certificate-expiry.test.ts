/**
 * Certificate expiry through a running proxy: the gauge of an APNs certificate entry and of the inbound TLS
 * certificate, read from /metrics over HTTPS, and the warning logged at start-up for one that ends soon.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import type { ProxyInstance } from '../src/instance';
import { createAppleClientCertificate } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate, type CertificateAuthority } from '../src/tls/certificates';
import { capturedLogger, startApnsFixture, startTestProxy, testConfig, writeTemp, type ApnsFixture } from './support';

const DAY = 86_400_000;
/** Whole seconds: a certificate's dates have no finer grain. */
const inDays = (days: number) => new Date(Math.floor(Date.now() / 1000) * 1000 + days * DAY);

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}

/** The value of one series of the text exposition, or undefined when absent. */
function sample(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('certificate expiry', () => {
  const apnsNotAfter = inDays(5);
  const tlsNotAfter = inDays(40);
  const log = capturedLogger('info');
  let apns: ApnsFixture;
  let inboundCa: CertificateAuthority;
  let proxy: ProxyInstance;

  before(async () => {
    apns = await startApnsFixture();
    const pair = createAppleClientCertificate(apns.ca, { topic: 'com.example.push', notAfter: apnsNotAfter });
    const certEntry = apns.entry({
      Type: 'apple_rn',
      AppleAuthKeyFile: '',
      AppleAuthKeyID: '',
      AppleTeamID: '',
      ApplePushCertPrivate: writeTemp(apns.dir, 'push.pem', pair.certPem + pair.keyPem),
    });
    inboundCa = createCertificateAuthority('Inbound Test CA');
    const served = createServerCertificate(inboundCa, ['localhost', '127.0.0.1'], { notBefore: inDays(-1), notAfter: tlsNotAfter });
    const config = testConfig({
      apple: [certEntry, apns.entry({ Type: 'apple' })],
      TLSCertFile: writeTemp(apns.dir, 'server.pem', served.certPem),
      TLSKeyFile: writeTemp(apns.dir, 'server-key.pem', served.keyPem),
    });
    proxy = await startTestProxy(config, [apns.ca.certPem], log.logger);
  });
  after(async () => {
    await proxy.close();
    await apns.close();
  });

  it('a gauge per APNs certificate entry and for the inbound TLS certificate, none for token auth', async () => {
    const metrics = await httpsGet(`${proxy.url}/metrics`, inboundCa.certPem);
    assert.match(metrics, /# TYPE service_certificate_expiry_timestamp_seconds gauge/);
    assert.equal(sample(metrics, 'service_certificate_expiry_timestamp_seconds{certificate="apple_rn"}'), apnsNotAfter.getTime() / 1000);
    assert.equal(sample(metrics, 'service_certificate_expiry_timestamp_seconds{certificate="inbound_tls"}'), tlsNotAfter.getTime() / 1000);
    assert.equal(sample(metrics, 'service_certificate_expiry_timestamp_seconds{certificate="apple"}'), undefined);
  });

  it('a certificate ending in 5 days gets a warning at start-up; one 40 days away does not', () => {
    const notices = log.lines().filter((l) => l.certificate !== undefined);
    assert.equal(notices.length, 1, JSON.stringify(notices));
    const [warning] = notices;
    assert.equal(warning!.level, 40);
    assert.equal(warning!.certificate, 'apple_rn');
    assert.equal(warning!.days_left, 5);
    assert.equal(warning!.not_after, apnsNotAfter.toISOString());
    assert.match(String(warning!.msg), /certificate apple_rn expires on .*, in 5 day\(s\): renew it in the Apple Developer portal/);
  });
});
