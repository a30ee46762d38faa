// The registry's UDP socket of the relay through the local node (PROTOCOL.md §5.8). The HTTP
// listeners are in platform/registry_http.ts.

/**
 * Opens the UDP socket of the relay on ::1 (any port), where only local programs can reach it;
 * null when unavailable.
 */
export function openRelaySocket(): Deno.DatagramConn | null {
  try {
    return Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 });
  } catch {
    return null;
  }
}
