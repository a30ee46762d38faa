/** Raised for a bad command line or option file; main.ts prints it and exits with 2. */
export class UsageError extends Error {
  override name = "UsageError";
}
