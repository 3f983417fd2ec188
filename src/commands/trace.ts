/**
 * `push-proxy trace ACK_ID`: "the server says sent, the phone shows nothing", answered from the running proxy's
 * trace (`GET /api/v1/trace`): what was received, each attempt with the provider's answer, what the chat server
 * was told, and the device's receipt or its absence.
 */
import { loadStartupConfig } from '../config/load';
import type { TraceRecord } from '../trace/record';
import { getAdminJson } from './admin-client';
import { CommandError, EXIT_CHECK_FAILED } from './errors';

export const TRACE_USAGE = `Usage: push-proxy trace ACK_ID [--server-id ID] [--config FILE] [--json]
       push-proxy trace --post-id ID [--server-id ID] [--config FILE] [--json]
       push-proxy trace --server-id ID [--config FILE] [--json]
  Asks the running proxy (its admin listener, AdminListenAddress, else ListenAddress; found from the same
  configuration as the proxy's) what became of recent notifications, newest first: the request as received
  (device token shortened; message text only in test mode), each attempt with the provider's answer (HTTP
  status, reason, apns-id or FCM message name, duration), the answer given to the chat server, and the
  device's receipt (its ack), or "no receipt yet".
  --server-id alone lists that server's notifications; with ACK_ID or --post-id it narrows them (a test
  service without an admin listener requires it).
  --json   print the API's JSON answer
  Exit code 0 when found; 2 when not found, when no proxy answers, or for wrong arguments.`;

interface TraceArguments {
  ackId?: string;
  postId?: string;
  serverId?: string;
  json: boolean;
  /** What goes on to the configuration search. */
  configArgs: string[];
}

function wrongArguments(why: string): CommandError {
  return new CommandError(`wrong arguments for trace: ${why}\n${TRACE_USAGE}`, EXIT_CHECK_FAILED);
}

export function parseTraceArguments(argv: readonly string[]): TraceArguments {
  const parsed: TraceArguments = { json: false, configArgs: [] };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v === '' || v.startsWith('--')) throw wrongArguments(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') parsed.json = true;
    else if (arg === '--post-id' || arg === '--server-id') {
      const key = arg === '--post-id' ? 'postId' : 'serverId';
      if (parsed[key] !== undefined) throw wrongArguments(`${arg} given twice`);
      parsed[key] = value(i++, arg);
    } else if (arg === '--config' || arg === '-config') parsed.configArgs.push(arg, value(i++, arg));
    else if (arg === '--require-config') parsed.configArgs.push(arg);
    else if (arg.startsWith('-')) throw wrongArguments(`unknown option ${arg}`);
    else if (parsed.ackId !== undefined) throw wrongArguments(`one ACK_ID only (got "${parsed.ackId}" and "${arg}")`);
    else if (arg === '') throw wrongArguments('ACK_ID is empty');
    else parsed.ackId = arg;
  }
  if (parsed.ackId !== undefined && parsed.postId !== undefined) throw wrongArguments('give ACK_ID or --post-id, not both');
  if (parsed.ackId === undefined && parsed.postId === undefined && parsed.serverId === undefined)
    throw wrongArguments('give ACK_ID, --post-id ID or --server-id ID');
  return parsed;
}

/** The report to print; a CommandError with exit code 2 when nothing is found or nothing answers. */
export async function runTrace(argv: readonly string[], env: Record<string, string | undefined>, cwd: string): Promise<string> {
  const args = parseTraceArguments(argv);
  const { config } = loadStartupConfig(args.configArgs, env, cwd);
  const query = new URLSearchParams();
  if (args.ackId !== undefined) query.set('ack_id', args.ackId);
  if (args.postId !== undefined) query.set('post_id', args.postId);
  if (args.serverId !== undefined) query.set('server_id', args.serverId);
  const answer = await getAdminJson(config, `/api/v1/trace?${query}`);
  const body = answer.body as { notifications?: TraceRecord[]; error?: string } | undefined;
  if (answer.status !== 200 || !Array.isArray(body?.notifications)) {
    const why =
      typeof body?.error === 'string'
        ? body.error
        : answer.status === 404
          ? `${answer.origin} serves no trace (is it a Push Proxy of this version, and its admin listener?)`
          : `unexpected answer: HTTP ${answer.status}`;
    throw new CommandError(`trace: ${why}`, EXIT_CHECK_FAILED);
  }
  if (args.json) return JSON.stringify(body, null, 2);
  return body.notifications.map(describeRecord).join('\n\n');
}

/** One notification's account, for a person. */
export function describeRecord(record: TraceRecord): string {
  const ids = [
    record.ack_id !== undefined ? `ack_id ${record.ack_id}` : undefined,
    record.post_id !== undefined ? `post_id ${record.post_id}` : undefined,
  ].filter((s) => s !== undefined);
  const lines = [
    `notification ${ids.length > 0 ? ids.join(', ') : '(no ack_id or post_id)'}`,
    `received:  ${record.at} from server ${record.server_id}${record.tenant !== undefined ? ` (tenant ${record.tenant})` : ''}: ${record.platform}, type ${record.type}${record.transport ? `, ${record.transport}` : ''}, device ${record.device}`,
  ];
  if (record.attempts.length === 0) lines.push('attempts:  none (refused before sending)');
  record.attempts.forEach((a, i) => {
    const parts = [
      a.verdict,
      a.status !== undefined ? `HTTP ${a.status}` : 'no HTTP answer',
      a.reason,
      a.provider_id !== undefined ? `id ${a.provider_id}` : undefined,
      `${a.ms} ms`,
    ].filter((s) => s !== undefined && s !== '');
    lines.push(`attempt ${i + 1}: ${parts.join(', ')}${i > 0 ? ` (started ${a.start_ms} ms after the first)` : ''}`);
  });
  const error = record.answer.error !== undefined ? `: ${record.answer.error}` : '';
  lines.push(`answer:    ${record.answer.status}${error} after ${record.ms} ms`);
  const r = record.receipt;
  lines.push(
    r
      ? `receipt:   ${r.at} (device received it at ${deviceTime(r.received_at)}${r.id_loaded ? ', id loaded' : ''})`
      : record.ack_id !== undefined
        ? 'receipt:   no receipt yet'
        : 'receipt:   none expected (no ack_id)',
  );
  return lines.join('\n');
}

/** The app's received_at (milliseconds since the epoch) as ISO text; as it came when it is no time. */
function deviceTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}
