import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

// Per-connection state: an entry lives exactly as long as its socket (null: no certificate).
const peers = new WeakMap<TLSSocket, X509Certificate | null>();

/**
 * The TLS peer certificate of a connection, parsed once per connection (RFC 8705 binding, audit).
 * The first read also refuses TLS 1.2 renegotiation on the socket, so the cached certificate stays
 * the connection's. Undefined when the peer presented none (or the socket is not TLS).
 */
export function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  let peer = peers.get(socket);
  if (peer === undefined) {
    if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
    peer = socket.getPeerX509Certificate() ?? null;
    socket.disableRenegotiation();
    peers.set(socket, peer);
  }
  return peer ?? undefined;
}
