// The UDP socket of the peer protocol (PROTOCOL.md §6.1): bound to [::]:326, receive loop
// feeding a handler (normally PeerProtocol.receive), ordered sends, clean close.

import { describeError } from "../core/errors.ts";
import { PEER_PORT } from "../core/constants.ts";

/** Largest datagram read (§6.1). */
const MAX_DATAGRAM = 65536;
/** Pause after a failed receive: first and longest (doubling in between), ms. */
const RECEIVE_RETRY_MS = [100, 5000] as const;

/** Called for every received datagram; the next one is read once it settles. */
export type DatagramHandler = (
  host: string,
  port: number,
  bytes: Uint8Array,
) => void | Promise<void>;

/** Options of openUdpSocket. */
export interface UdpSocketOptions {
  /** Address to bind (default "::", all addresses of both families). */
  hostname?: string;
  /** Port to bind (default 326; 0 picks a free port, for tests). */
  port?: number;
  onDatagram: DatagramHandler;
  /** Reports a failed handler, or a failed receive (retried after a pause). */
  onError?: (error: Error) => void;
  /** Binds the socket (default Deno.listenDatagram; tests pass a fake). */
  listen?: (o: Deno.UdpListenOptions & { transport: "udp" }) => Deno.DatagramConn;
}

/** A bound UDP socket with its receive loop running. */
export interface UdpSocket {
  /** Bound address and port. */
  readonly hostname: string;
  readonly port: number;
  /** Sends one datagram; sends are performed in call order. */
  send(host: string, port: number, bytes: Uint8Array): Promise<void>;
  /** Stops the receive loop and closes the socket; resolves when both are done. */
  close(): Promise<void>;
}

/** Binds a UDP socket and starts feeding received datagrams to `onDatagram`. */
export function openUdpSocket(options: UdpSocketOptions): UdpSocket {
  const hostname = options.hostname ?? "::";
  const port = options.port ?? PEER_PORT;
  let conn: Deno.DatagramConn;
  try {
    conn = (options.listen ?? Deno.listenDatagram)({ hostname, port, transport: "udp" });
  } catch (cause) {
    throw new Error(`Cannot bind UDP socket [${hostname}]:${port}`, { cause });
  }
  const bound = conn.addr as Deno.NetAddr;
  const report = options.onError ?? (() => {});
  let closed = false;

  // A pause after a failed receive, cut short by close().
  let pause: { timer: ReturnType<typeof setTimeout>; done: () => void } | null = null;
  const sleep = (ms: number) =>
    new Promise<void>((done) => {
      pause = { timer: setTimeout(done, ms), done };
    }).finally(() => pause = null);

  const loop = (async () => {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    let delay: number = RECEIVE_RETRY_MS[0];
    while (!closed) {
      let data: Uint8Array, from: Deno.NetAddr;
      try {
        const [d, addr] = await conn.receive(buffer);
        data = d.slice(); // the buffer is reused
        from = addr as Deno.NetAddr;
      } catch (e) {
        if (closed) return;
        report(
          new Error(
            `UDP receive on [${hostname}]:${bound.port} failed: ${describeError(e)}; ` +
              `receiving again in ${delay} ms`,
            { cause: e },
          ),
        );
        await sleep(delay);
        delay = Math.min(delay * 2, RECEIVE_RETRY_MS[1]);
        continue;
      }
      delay = RECEIVE_RETRY_MS[0];
      try {
        await options.onDatagram(from.hostname, from.port, data);
      } catch (e) {
        report(
          new Error(
            `Datagram from [${from.hostname}]:${from.port} not handled: ${describeError(e)}`,
            {
              cause: e,
            },
          ),
        );
      }
    }
  })();

  let sending: Promise<void> = Promise.resolve();
  return {
    hostname: bound.hostname,
    port: bound.port,
    send(host, to, bytes) {
      const next = sending.then(async () => {
        if (closed) throw new Error(`UDP socket [${hostname}]:${bound.port} is closed`);
        await conn.send(bytes, { transport: "udp", hostname: host, port: to });
      });
      sending = next.catch(() => {});
      return next;
    },
    async close() {
      if (closed) return loop;
      closed = true;
      if (pause) {
        clearTimeout(pause.timer);
        pause.done();
      }
      await sending;
      conn.close();
      await loop;
    },
  };
}
