// Errors that map to an HTTP status of the registry RPC (PROTOCOL.md §4.2).

/**
 * A request refused with `status`; `message` is logged, and sent to the client only for a 403
 * (it says why the registry refuses: keep secrets out of it).
 */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(readonly status: number, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
