/** Who may send, and what /version says: /version's mode, AllowedClients. The mode defaults: modes.unit.test.ts. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ProxyInstance } from '../src/instance';
import { APPLE_TOKEN, get, post, startApnsFixture, startTestProxy, testConfig, type ApnsFixture } from './support';

describe('GET /version names the mode', () => {
  it('so nobody mistakes a test service for production', async () => {
    const proxy = await startTestProxy(testConfig({ Mode: 'test' }), []);
    try {
      const body = JSON.parse((await get(`${proxy.url}/version`)).text) as Record<string, string>;
      assert.deepEqual(Object.keys(body), ['hash', 'version', 'mode', 'config']);
      assert.equal(body.mode, 'test');
    } finally {
      await proxy.close();
    }
  });
});

describe('AllowedClients', () => {
  let apns: ApnsFixture;
  let allowed: ProxyInstance;
  let refused: ProxyInstance;
  const push = { platform: 'apple_rn', server_id: 's', device_id: APPLE_TOKEN, type: 'message' };

  before(async () => {
    apns = await startApnsFixture();
    allowed = await startTestProxy(testConfig({ apple: [apns.entry()], AllowedClients: ['127.0.0.0/8', '::1/128'] }), [apns.ca.certPem]);
    refused = await startTestProxy(testConfig({ apple: [apns.entry()], AllowedClients: ['10.0.0.0/8', '192.168.0.0/16'] }), [
      apns.ca.certPem,
    ]);
  });
  after(async () => {
    await Promise.all([allowed.close(), refused.close()]);
    await apns.close();
  });

  it('a client inside the ranges is served', async () => {
    assert.equal((await post(`${allowed.url}/api/v1/send_push`, push)).text, '{"status":"OK"}\n');
  });

  it('a client outside them gets 403 with a JSON FAIL, and nothing is delivered', async () => {
    apns.peer.reset();
    const answer = await post(`${refused.url}/api/v1/send_push`, push);
    assert.equal(answer.status, 403);
    assert.equal(answer.text, '{"error":"Client address 127.0.0.1 is not allowed to use this push proxy","status":"FAIL"}\n');
    assert.equal((await post(`${refused.url}/api/v1/ack`, { id: 'a', platform: 'ios', type: 'm' })).status, 403);
    assert.equal(apns.peer.received.length, 0);
    // Health and readiness stay reachable for probes.
    assert.equal((await get(`${refused.url}/healthz`)).status, 200);
  });

  it('a bad CIDR stops start-up naming the key', async () => {
    await assert.rejects(
      startTestProxy(testConfig({ AllowedClients: ['10.0.0.0/33'] }), []),
      /AllowedClients entry "10\.0\.0\.0\/33" is not an IP address or CIDR/,
    );
  });
});
