/**
 * The CAs an outbound TLS connection (APNs, FCM, Google's token endpoint) trusts.
 *
 * Two kinds of CA are added to Node's roots: operators add theirs with NODE_EXTRA_CA_CERTS (an inspecting
 * corporate proxy, a private APNs relay), and the proxy adds the CAs of peers it started itself (the test-mode
 * sandbox). The rule: adding the second kind never takes away the first. Node applies NODE_EXTRA_CA_CERTS only
 * to its default store, and an explicit `ca` option replaces that store, so a `ca` list is rebuilt whole:
 * Node's roots, then NODE_EXTRA_CA_CERTS, then the CAs of the proxy's own peers.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

/**
 * The `ca` option for a TLS context that also trusts `peerCa` (CAs of peers this process started): undefined
 * when there is none, so Node's default store (its roots and NODE_EXTRA_CA_CERTS) applies unchanged. `env` is
 * where NODE_EXTRA_CA_CERTS is read: by default the environment Node itself read it from.
 */
export function trustedCaList(peerCa: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  if (!peerCa || peerCa.length === 0) return undefined;
  const operatorCa: string[] = [];
  const operatorCaFile = env.NODE_EXTRA_CA_CERTS;
  if (operatorCaFile) {
    try {
      operatorCa.push(readFileSync(operatorCaFile, 'utf8'));
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS and goes on without it: so does this.
    }
  }
  return [...tls.rootCertificates, ...operatorCa, ...peerCa];
}
