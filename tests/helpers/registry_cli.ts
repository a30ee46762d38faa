// `re6st registry` run through its command line (main.ts) as a separate process on loopback,
// for tests of what an operator runs against it (admin commands, metrics).

import { selfArgv } from "../../platform/self.ts";
import { waitFor } from "../netns/lab.ts";
import { type RegistryFiles, registryFiles } from "./registry.ts";

/** A free TCP port on 127.0.0.1 (closed again at once). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running registry process. */
export interface RegistryProcess {
  files: RegistryFiles;
  port: number;
  url: string;
  /** SIGTERM, wait, remove its files; returns its exit code. */
  stop(): Promise<number>;
}

/** Starts `re6st registry` on 127.0.0.1 with the test CA and `args`; waits until it answers. */
export async function startRegistryCli(args: string[] = []): Promise<RegistryProcess> {
  const files = await registryFiles();
  const port = freePort();
  const c = files.config;
  const argv = [
    ...selfArgv(),
    "registry",
    ...["--ca", c.ca, "--key", c.key, "--db", c.db!, "--logfile", c.logfile!, "--run", c.run!],
    ...["--port", String(port), "--ipv4-bind", "127.0.0.1", "--ipv6-bind", ""],
    ...["--anonymous-prefix-length", "16", "--prefix-length", "16", "-v", "2"],
    ...args,
  ];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    const { code } = await child.status;
    await files.cleanup();
    return code;
  };
  try {
    await waitFor(async () => {
      const r = await fetch(`${url}getCa`);
      await r.body?.cancel();
      return r.status === 200;
    }, { what: `the registry answering on ${url}`, timeoutMs: 30_000 });
  } catch (e) {
    await stop();
    throw e;
  }
  return { files, port, url, stop };
}
