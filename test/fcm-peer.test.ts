/** FcmPeer alone, through raw HTTP/1.1 and HTTP/2 clients: Google's token endpoint and FCM v1 send, as Google answers. */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import https from 'node:https';
import http2 from 'node:http2';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FCM_ERRORS, FCM_SCOPE, FcmPeer, GOOGLE_TOKEN_URI, JWT_BEARER_GRANT, type FcmErrorCode } from '../src/sandbox/fcm-peer';
import { createGoogleServiceAccount, type GoogleServiceAccount } from '../src/sandbox/credentials';
import { createCertificateAuthority, createServerCertificate } from '../src/tls/certificates';

const ca = createCertificateAuthority('FCM peer test CA');
const serverTls = createServerCertificate(ca, ['localhost', '127.0.0.1']);
const DEVICE = 'fcm-device-token:APA91b' + 'x'.repeat(40);
const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const UNAUTHENTICATED_MESSAGE =
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  text: string;
  json: unknown;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function http1(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: options.method ?? 'POST', headers: options.headers, ca: ca.certPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parse(text) });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function h2(url: string, options: { headers?: Record<string, string>; body?: string }): Promise<Answer> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const session = http2.connect(target.origin, { ca: ca.certPem });
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': target.pathname, ...options.headers });
    let headers: Record<string, unknown> = {};
    stream.on('response', (h) => (headers = h));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      session.close();
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ status: Number(headers[':status']), headers, text, json: parse(text) });
    });
    stream.on('error', reject);
    stream.end(options.body);
  });
}

function jwt(header: object, claims: object, key: KeyObject | string): string {
  const unsigned = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${unsigned}.${sign('sha256', Buffer.from(unsigned), key).toString('base64url')}`;
}

function assertion(
  account: GoogleServiceAccount,
  overrides: Record<string, unknown> = {},
  key: KeyObject | string = account.private_key,
): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt(
    { alg: 'RS256', typ: 'JWT' },
    { iss: account.client_email, scope: FCM_SCOPE, aud: account.token_uri, iat: now, exp: now + 3600, ...overrides },
    key,
  );
}

function form(fields: Record<string, string>): { headers: Record<string, string>; body: string } {
  return { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
}

function googleError(code: number, status: string, message: string, details?: unknown[]): unknown {
  return { error: { code, message, status, ...(details ? { details } : {}) } };
}

describe('FcmPeer', () => {
  let peer: FcmPeer;
  let account: GoogleServiceAccount;
  let accessToken: string;
  const sendUrl = (project = account.project_id): string => `${peer.url}/v1/projects/${project}/messages:send`;
  const bearer = (token = accessToken): Record<string, string> => ({
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
  });
  const send = (message: unknown, token = accessToken, extra: object = {}): Promise<Answer> =>
    http1(sendUrl(), { headers: bearer(token), body: JSON.stringify({ message, ...extra }) });

  async function grant(acct = account): Promise<string> {
    const answer = await http1(peer.tokenUri, form({ grant_type: JWT_BEARER_GRANT, assertion: assertion(acct) }));
    assert.equal(answer.status, 200, answer.text);
    return (answer.json as { access_token: string }).access_token;
  }

  before(async () => {
    peer = new FcmPeer({ tls: serverTls });
    await peer.start();
    const created = createGoogleServiceAccount(peer.tokenUri, 'peer-test-project');
    account = created.account;
    peer.addServiceAccount(account.client_email, created.publicKeyPem, account.project_id);
    accessToken = await grant();
  });
  after(() => peer.close());
  beforeEach(() => peer.reset());

  describe('token endpoint', () => {
    it('grants a token for a well-signed assertion, as Google answers', async () => {
      const answer = await http1(peer.tokenUri, form({ grant_type: JWT_BEARER_GRANT, assertion: assertion(account) }));
      assert.equal(answer.status, 200);
      const json = answer.json as Record<string, unknown>;
      assert.deepEqual(Object.keys(json).sort(), ['access_token', 'expires_in', 'token_type']);
      assert.match(json.access_token as string, /^ya29\./);
      assert.equal(json.expires_in, 3600);
      assert.equal(json.token_type, 'Bearer');
      assert.equal(peer.tokenRequests.length, 1);
      assert.equal(peer.tokenRequests[0]!.clientEmail, account.client_email);
      assert.equal(peer.tokenRequests[0]!.status, 200);
    });

    it('grants over HTTP/2 too, and honours setTokenLifetime', async () => {
      peer.setTokenLifetime(42);
      const answer = await h2(peer.tokenUri, form({ grant_type: JWT_BEARER_GRANT, assertion: assertion(account) }));
      assert.equal(answer.status, 200);
      assert.equal((answer.json as { expires_in: number }).expires_in, 42);
      assert.equal(peer.tokenRequests[0]!.httpVersion, '2.0');
    });

    it("accepts Google's token URL as audience (requests redirected from Google to the peer)", async () => {
      const answer = await http1(
        peer.tokenUri,
        form({ grant_type: JWT_BEARER_GRANT, assertion: assertion(account, { aud: GOOGLE_TOKEN_URI }) }),
      );
      assert.equal(answer.status, 200, answer.text);
    });

    const refusals: Array<{ name: string; fields: () => Record<string, string>; error: string; description: () => string }> = [
      {
        name: 'a bad signature',
        fields: () => ({
          grant_type: JWT_BEARER_GRANT,
          assertion: assertion(account, {}, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
        }),
        error: 'invalid_grant',
        description: () => 'Invalid JWT Signature.',
      },
      {
        name: 'an unknown account',
        fields: () => ({
          grant_type: JWT_BEARER_GRANT,
          assertion: assertion(account, { iss: 'nobody@elsewhere.iam.gserviceaccount.com' }),
        }),
        error: 'invalid_grant',
        description: () => 'Invalid grant: account not found',
      },
      {
        name: 'another grant type',
        fields: () => ({ grant_type: 'client_credentials', assertion: assertion(account) }),
        error: 'unsupported_grant_type',
        description: () => 'Invalid grant_type: client_credentials',
      },
      {
        name: 'no assertion',
        fields: () => ({ grant_type: JWT_BEARER_GRANT }),
        error: 'invalid_request',
        description: () => 'Missing required parameter: assertion',
      },
      {
        name: 'a wrong audience',
        fields: () => ({ grant_type: JWT_BEARER_GRANT, assertion: assertion(account, { aud: 'https://example.com/token' }) }),
        error: 'invalid_grant',
        description: () => `Invalid JWT: Failed audience check. The right audience is ${peer.tokenUri}`,
      },
      {
        name: 'an expired assertion',
        fields: () => ({ grant_type: JWT_BEARER_GRANT, assertion: assertion(account, { iat: 1_000_000, exp: 1_003_600 }) }),
        error: 'invalid_grant',
        description: () =>
          'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      },
      {
        name: 'an assertion valid for more than an hour',
        fields: () => ({ grant_type: JWT_BEARER_GRANT, assertion: assertion(account, { exp: Math.floor(Date.now() / 1000) + 7200 }) }),
        error: 'invalid_grant',
        description: () =>
          'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
      },
      {
        name: 'no FCM scope',
        fields: () => ({
          grant_type: JWT_BEARER_GRANT,
          assertion: assertion(account, { scope: 'https://www.googleapis.com/auth/userinfo.email' }),
        }),
        error: 'invalid_scope',
        description: () => 'Invalid OAuth scope or ID token audience provided.',
      },
      {
        name: 'garbage instead of a JWT',
        fields: () => ({ grant_type: JWT_BEARER_GRANT, assertion: 'not-a-jwt' }),
        error: 'invalid_grant',
        description: () => 'Invalid JWT: Failed to parse the assertion.',
      },
    ];
    for (const refusal of refusals) {
      it(`refuses ${refusal.name}: 400 ${refusal.error}`, async () => {
        const answer = await http1(peer.tokenUri, form(refusal.fields()));
        assert.equal(answer.status, 400);
        assert.deepEqual(answer.json, { error: refusal.error, error_description: refusal.description() });
        assert.equal(peer.tokenRequests[0]!.status, 400);
        assert.equal(peer.tokenRequests[0]!.error, refusal.error);
      });
    }
  });

  describe('messages:send', () => {
    it('accepts a message over HTTP/1.1 and records it', async () => {
      const message = { token: DEVICE, data: { type: 'message', badge: '1' }, android: { priority: 'high' } };
      const answer = await send(message);
      assert.equal(answer.status, 200);
      const name = (answer.json as { name: string }).name;
      assert.match(name, new RegExp(`^projects/${account.project_id}/messages/0:\\d+[0-9a-f]+%[0-9a-f]{16}$`));
      assert.deepEqual(answer.json, { name });
      assert.equal(peer.received.length, 1);
      const received = peer.received[0]!;
      assert.equal(received.token, DEVICE);
      assert.deepEqual(received.data, message.data);
      assert.deepEqual(received.android, { priority: 'high' });
      assert.deepEqual(received.message, message);
      assert.equal(received.httpVersion, '1.1');
      assert.equal(received.status, 200);
      assert.equal(received.validateOnly, false);
      assert.equal(received.headers.authorization, `Bearer ${accessToken}`);
      assert.deepEqual(received.answer, { name });
      assert.deepEqual(peer.receivedFor(DEVICE), [received]);
    });

    it('accepts over HTTP/2, accepts any syntactically valid made-up token, and records validate_only', async () => {
      const answer = await h2(sendUrl(), {
        headers: bearer(),
        body: JSON.stringify({ message: { token: 'abc', data: {} }, validate_only: true }),
      });
      assert.equal(answer.status, 200);
      assert.equal(peer.received[0]!.httpVersion, '2.0');
      assert.equal(peer.received[0]!.validateOnly, true);
    });

    it("answers a validate_only send as a real one, with FCM's fixed name, and records it as not delivered", async () => {
      const answer = await send({ token: DEVICE, data: { type: 'message' } }, accessToken, { validate_only: true });
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.json, { name: `projects/${account.project_id}/messages/fake_message_id` });
      peer.unregister('gone-token');
      const gone = await send({ token: 'gone-token' }, accessToken, { validate_only: true });
      assert.equal(gone.status, 404);
      const real = await send({ token: DEVICE });
      assert.equal(real.status, 200);
      // `delivered` is set when each exchange has ended, just after the client read its answer.
      while (!peer.received.every((m) => m.delivered !== undefined)) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(
        peer.received.map((m) => [m.validateOnly, m.delivered]),
        [
          [true, false],
          [true, false],
          [false, true],
        ],
      );
    });

    it('refuses a send without a valid bearer token: 401 UNAUTHENTICATED', async () => {
      for (const headers of [{ 'content-type': 'application/json' }, bearer('ya29.made-up')]) {
        const answer = await http1(sendUrl(), { headers, body: JSON.stringify({ message: { token: DEVICE } }) });
        assert.equal(answer.status, 401);
        assert.deepEqual(answer.json, googleError(401, 'UNAUTHENTICATED', UNAUTHENTICATED_MESSAGE));
      }
      assert.equal(peer.received.length, 2);
      assert.equal(peer.received[0]!.errorCode, 'UNAUTHENTICATED');
    });

    it('refuses an expired token and revoked tokens', async () => {
      peer.setTokenLifetime(0);
      const shortLived = await grant();
      assert.equal((await send({ token: DEVICE }, shortLived)).status, 401);
      peer.reset();
      const other = await grant();
      peer.revokeAccessTokens();
      assert.equal((await send({ token: DEVICE }, other)).status, 401);
      accessToken = await grant();
      assert.equal((await send({ token: DEVICE })).status, 200);
    });

    it('refuses a token issued for another project: 403 PERMISSION_DENIED without an FcmError detail', async () => {
      const answer = await http1(sendUrl('someone-elses-project'), {
        headers: bearer(),
        body: JSON.stringify({ message: { token: DEVICE } }),
      });
      assert.equal(answer.status, 403);
      assert.deepEqual(
        answer.json,
        googleError(
          403,
          'PERMISSION_DENIED',
          "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/someone-elses-project' (or it may not exist).",
        ),
      );
    });

    const badRequest = (field: string, description: string, fcmError = false): unknown =>
      googleError(400, 'INVALID_ARGUMENT', description, [
        { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field, description }] },
        ...(fcmError ? [{ '@type': FCM_ERROR_TYPE, errorCode: 'INVALID_ARGUMENT' }] : []),
      ]);
    const invalid: Array<{ name: string; body: unknown; expected: unknown }> = [
      {
        name: 'a non-string data value',
        body: { message: { token: DEVICE, data: { type: 'message', badge: 5 } } },
        expected: badRequest('message.data[1].value', "Invalid value at 'message.data[1].value' (TYPE_STRING), 5"),
      },
      {
        name: 'an object data value',
        body: { message: { token: DEVICE, data: { nested: { a: 1 } } } },
        expected: badRequest(
          'message.data[0].value',
          "Invalid value at 'message.data[0].value' (TYPE_STRING), Starting an object on a scalar field",
        ),
      },
      {
        name: 'no recipient',
        body: { message: { data: { type: 'message' } } },
        expected: badRequest('message', 'Recipient of the message is not set.', true),
      },
      {
        name: 'a malformed registration token',
        body: { message: { token: 'not a token!' } },
        expected: badRequest('message.token', 'The registration token is not a valid FCM registration token', true),
      },
      {
        name: 'an unknown android priority',
        body: { message: { token: DEVICE, android: { priority: 'urgent' } } },
        expected: badRequest(
          'message.android.priority',
          `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "urgent"`,
        ),
      },
      {
        name: 'an unknown message field',
        body: { message: { token: DEVICE, ttl: '10s' } },
        expected: badRequest('message', `Invalid JSON payload received. Unknown name "ttl" at 'message': Cannot find field.`),
      },
    ];
    for (const { name, body, expected } of invalid) {
      it(`refuses ${name}: 400 INVALID_ARGUMENT in Google's words`, async () => {
        const answer = await http1(sendUrl(), { headers: bearer(), body: JSON.stringify(body) });
        assert.equal(answer.status, 400);
        assert.deepEqual(answer.json, expected);
        assert.equal(peer.received[0]!.status, 400);
      });
    }

    const codes = Object.keys(FCM_ERRORS) as FcmErrorCode[];
    for (const errorCode of codes) {
      it(`answers ${errorCode} as FCM does (${FCM_ERRORS[errorCode].code} ${FCM_ERRORS[errorCode].status})`, async () => {
        peer.setTokenBehaviour(DEVICE, { error: errorCode });
        const answer = await send({ token: DEVICE, data: { type: 'message' } });
        const known = FCM_ERRORS[errorCode];
        assert.equal(answer.status, known.code);
        assert.deepEqual(answer.json, googleError(known.code, known.status, known.message, [{ '@type': FCM_ERROR_TYPE, errorCode }]));
        assert.equal(peer.received[0]!.errorCode, errorCode);
      });
    }

    it('uses the documented messages for the codes named in the spec', () => {
      assert.deepEqual(Object.fromEntries(codes.map((c) => [c, [FCM_ERRORS[c].code, FCM_ERRORS[c].status]])), {
        UNREGISTERED: [404, 'NOT_FOUND'],
        INVALID_ARGUMENT: [400, 'INVALID_ARGUMENT'],
        SENDER_ID_MISMATCH: [403, 'PERMISSION_DENIED'],
        QUOTA_EXCEEDED: [429, 'RESOURCE_EXHAUSTED'],
        INTERNAL: [500, 'INTERNAL'],
        UNAVAILABLE: [503, 'UNAVAILABLE'],
        THIRD_PARTY_AUTH_ERROR: [401, 'UNAUTHENTICATED'],
      });
      assert.equal(FCM_ERRORS.UNREGISTERED.message, 'Requested entity was not found.');
    });

    it('unregister(token): UNREGISTERED from then on', async () => {
      peer.unregister(DEVICE);
      const answer = await send({ token: DEVICE });
      assert.equal(answer.status, 404);
      assert.equal(peer.received[0]!.errorCode, 'UNREGISTERED');
    });

    it('a behaviour list is used one per send, its last entry sticks; Retry-After and raw answers', async () => {
      peer.setTokenBehaviour(DEVICE, [{ error: 'UNAVAILABLE', retryAfterSec: 30 }, { status: 200, body: 'not json' }, { ok: true }]);
      const first = await send({ token: DEVICE });
      assert.equal(first.status, 503);
      assert.equal(first.headers['retry-after'], '30');
      const second = await send({ token: DEVICE });
      assert.equal(second.status, 200);
      assert.equal(second.text, 'not json');
      assert.equal((await send({ token: DEVICE })).status, 200);
      assert.equal((await send({ token: DEVICE })).status, 200);
      assert.deepEqual(
        peer.receivedFor(DEVICE).map((m) => m.status),
        [503, 200, 200, 200],
      );
    });

    it('waitForMessages resolves once enough sends arrived', async () => {
      const waiting = peer.waitForMessages(2, 5000);
      await Promise.all([send({ token: DEVICE }), send({ token: DEVICE })]);
      assert.equal((await waiting).length, 2);
      await assert.rejects(peer.waitForMessages(3, 50), /2 of 3/);
    });

    it('unknown paths get 404, other methods 405', async () => {
      assert.equal((await http1(`${peer.url}/v1/projects/p/messages`, { body: '{}' })).status, 404);
      assert.equal((await http1(sendUrl(), { method: 'GET' })).status, 405);
    });
  });

  it('close() returns promptly with a hanging request and an idle keep-alive connection open', async () => {
    const own = new FcmPeer({ tls: serverTls });
    await own.start();
    const created = createGoogleServiceAccount(own.tokenUri, 'closing');
    own.addServiceAccount(created.account.client_email, created.publicKeyPem, 'closing');
    const agent = new https.Agent({ keepAlive: true, ca: ca.certPem });
    const token = await new Promise<string>((resolve, reject) => {
      const body = new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion: assertion(created.account) }).toString();
      const req = https.request(
        own.tokenUri,
        { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve((JSON.parse(text) as { access_token: string }).access_token));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    own.setTokenBehaviour(DEVICE, { hang: true });
    const hanging = new Promise<string>((resolve) => {
      const req = https.request(`${own.url}/v1/projects/closing/messages:send`, {
        method: 'POST',
        ca: ca.certPem,
        agent: false,
        headers: { authorization: `Bearer ${token}` },
      });
      req.on('error', (err) => resolve(err.message));
      req.on('response', () => resolve('answered'));
      req.end(JSON.stringify({ message: { token: DEVICE } }));
    });
    await own.waitForMessages(1);
    assert.equal(own.received[0]!.behaviour, 'hang');
    const started = Date.now();
    await own.close();
    assert.ok(Date.now() - started < 2000, 'close() must not wait for hanging requests');
    assert.notEqual(await hanging, 'answered');
    agent.destroy();
  });
});
