/**
 * The CAs a proxy trusts when it is also handed CAs of its own peers (as test mode is, for the sandbox's): the
 * operator's NODE_EXTRA_CA_CERTS keeps working for APNs. A real child process, because Node reads
 * NODE_EXTRA_CA_CERTS only when a process starts. Which list the transports get: tls-trust.unit.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { createCertificateAuthority } from '../src/tls/certificates';
import { APPLE_TOKEN, post, startApnsFixture, tempDir, writeTemp, type ApnsFixture } from './support';

const PROBE = path.join(__dirname, 'trust-probe.js');

/** The probe proxy with Apple entries to `operatorPeer` (as `apple_rn`) and `ownPeer` (as `apple`), given `ownPeer`'s CA. */
async function startProbe(
  operatorPeer: ApnsFixture,
  ownPeer: ApnsFixture,
  env: Record<string, string>,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const settings = { apple: [operatorPeer.entry({ Type: 'apple_rn' }), ownPeer.entry({ Type: 'apple' })], trustedCa: [ownPeer.ca.certPem] };
  const child = spawn(process.execPath, [PROBE, JSON.stringify(settings)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  try {
    const [line] = (await Promise.race([once(createInterface({ input: child.stdout }), 'line'), exited])) as [string];
    assert.ok(child.exitCode === null, 'the probe exited before listening');
    return { url: (JSON.parse(line) as { url: string }).url, stop };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

function sendTo(url: string, platform: string) {
  return post(`${url}/api/v1/send_push`, { platform, server_id: 's', device_id: APPLE_TOKEN, type: 'message', message: 'x' });
}

describe('outbound TLS trust with CAs of the proxy’s own peers', () => {
  it('APNs trusts NODE_EXTRA_CA_CERTS and the own peers’ CAs together', async () => {
    // Named unlike the own peer's CA: OpenSSL looks an issuer up by name, and one of two same-named CAs hides the other.
    const operatorPeer = await startApnsFixture({ ca: createCertificateAuthority('Operator CA') });
    const ownPeer = await startApnsFixture();
    const caFile = writeTemp(tempDir(), 'operator-ca.pem', operatorPeer.ca.certPem);
    const probe = await startProbe(operatorPeer, ownPeer, { NODE_EXTRA_CA_CERTS: caFile });
    try {
      assert.equal((await sendTo(probe.url, 'apple_rn')).text, '{"status":"OK"}\n');
      assert.equal((await sendTo(probe.url, 'apple')).text, '{"status":"OK"}\n');
      assert.equal(operatorPeer.peer.receivedFor(APPLE_TOKEN).length, 1);
      assert.equal(ownPeer.peer.receivedFor(APPLE_TOKEN).length, 1);
    } finally {
      await probe.stop();
      await Promise.all([operatorPeer.close(), ownPeer.close()]);
    }
  });

  it('without NODE_EXTRA_CA_CERTS the operator’s peer is not trusted: FAIL, no delivery; the own peer still is', async () => {
    // Named unlike the own peer's CA: OpenSSL looks an issuer up by name, and one of two same-named CAs hides the other.
    const operatorPeer = await startApnsFixture({ ca: createCertificateAuthority('Operator CA') });
    const ownPeer = await startApnsFixture();
    const probe = await startProbe(operatorPeer, ownPeer, {});
    try {
      assert.equal((await sendTo(probe.url, 'apple_rn')).text, '{"error":"unknown transport error","status":"FAIL"}\n');
      assert.equal(operatorPeer.peer.received.length, 0);
      assert.equal((await sendTo(probe.url, 'apple')).text, '{"status":"OK"}\n');
      assert.equal(ownPeer.peer.receivedFor(APPLE_TOKEN).length, 1);
    } finally {
      await probe.stop();
      await Promise.all([operatorPeer.close(), ownPeer.close()]);
    }
  });
});
