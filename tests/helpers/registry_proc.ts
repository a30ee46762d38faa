// Runs a registry in its own process for crash and signal tests:
// `deno run -A tests/helpers/registry_proc.ts '<RegistryConfig JSON>' ['<options JSON>']`.
// Options: `clockOffsetFile`: the registry's clock runs ahead of the real one by the number of
// seconds written in that file (read at each reading; 0 while the file is absent);
// `openFileLimit`: RegistryDeps.openFileLimit; `throwWhenFile`: an uncaught error once that
// file exists (polled); `libcrypto`: RegistryDeps.libcrypto.

import { runRegistryUntilSignal } from "../../cmd/registry_daemon.ts";
import { type Clock, systemClock } from "../../core/clock.ts";

const config = JSON.parse(Deno.args[0]);
const opts: {
  clockOffsetFile?: string;
  openFileLimit?: number | null;
  throwWhenFile?: string;
  libcrypto?: string;
} = JSON.parse(Deno.args[1] ?? "{}");

if (opts.throwWhenFile !== undefined) {
  const file = opts.throwWhenFile;
  const poll = setInterval(() => {
    try {
      Deno.statSync(file);
    } catch {
      return;
    }
    clearInterval(poll);
    throw new Error("test: an uncaught error");
  }, 20);
}

function offsetClock(file: string): Clock {
  return {
    now() {
      let offsetS = 0;
      try {
        offsetS = Number(Deno.readTextFileSync(file)) || 0;
      } catch {
        // no offset yet
      }
      return Date.now() + offsetS * 1000;
    },
    sleep: systemClock.sleep,
  };
}

Deno.exit(
  await runRegistryUntilSignal(config, { err: (t) => console.error(t) }, {
    openRelaySocket: () => null,
    clock: opts.clockOffsetFile ? offsetClock(opts.clockOffsetFile) : undefined,
    openFileLimit: opts.openFileLimit,
    libcrypto: opts.libcrypto,
  }),
);
