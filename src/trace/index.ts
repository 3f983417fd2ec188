/**
 * The trace of one instance, assembled from its configuration: the store (one ring for the trace API and the
 * inspector), the operator query every process answers from its own store, and the route.
 *
 * The ring holds TraceCapacity records; with the inspector shown it holds at least the inspector's 200, so
 * `Inspector` on with `TraceCapacity` 0 keeps 200 (and the trace API answers from them). Records are built
 * only when the ring holds any.
 */
import type express from 'express';
import type { ProxyConfig } from '../config/types';
import { listenerSurfaces } from '../http/surfaces';
import { DEFAULT_INSPECTOR_CAPACITY, NotificationInspector } from '../inspect/inspector';
import type { PushAck } from '../notification';
import type { OperatorQueries } from '../operator-queries';
import { answerTraceQuery, TRACE_QUERY, type TraceAnswer } from './query';
import { traceRoutes } from './routes';
import { TraceStore } from './store';

export interface InstanceTrace {
  /** Undefined when nothing is kept (TraceCapacity 0, no inspector). */
  store: TraceStore | undefined;
  /** The inspector's view of the store, where a listener shows the inspector. */
  inspector: NotificationInspector | undefined;
  /** For the ack path: the device's receipt joins its record. */
  onReceipt: ((ack: PushAck) => void) | undefined;
  /** `GET /api/v1/trace`, for the operator's API. */
  router: express.Router;
}

export function instanceTrace(
  config: Pick<ProxyConfig, 'Mode' | 'EnableMetrics' | 'Inspector' | 'AdminListenAddress' | 'TraceCapacity'>,
  queries: OperatorQueries,
): InstanceTrace {
  const surfaces = listenerSurfaces(config);
  // Kept only where a listener shows it: hosted mode without an admin listener serves no inspector.
  const inspectorShown = surfaces.public.inspector || (surfaces.admin?.inspector ?? false);
  const capacity = Math.max(config.TraceCapacity, inspectorShown ? DEFAULT_INSPECTOR_CAPACITY : 0);
  const test = config.Mode === 'test';
  // Message text only in test mode; the request as sent (which holds it) also where the inspector shows it.
  const store = capacity > 0 ? new TraceStore(capacity, { messageText: test, keepSent: test || inspectorShown }) : undefined;
  const none: TraceAnswer = { capacity: 0, records: [], receipts: [] };
  queries.answer(TRACE_QUERY, (params) => (store ? answerTraceQuery(store, params, test) : none));
  return {
    store,
    inspector: store && inspectorShown ? new NotificationInspector(store) : undefined,
    onReceipt: store ? (ack) => store.acknowledged(ack) : undefined,
    // Where the operator's API is the public listener of a test service, a server id is required.
    router: traceRoutes({ queries, requireServerId: test && surfaces.admin === undefined }),
  };
}
