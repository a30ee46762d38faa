// The node's memory at rest matters: modules it does not need are imported only when used.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

interface Dep {
  specifier: string;
  code?: { specifier?: string };
  isDynamic?: boolean;
}

/** Modules `entry` loads at start (static code imports, transitively; type imports skipped). */
async function staticGraph(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0, "deno info");
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: Dep[] }[];
  };
  const deps = new Map(info.modules.map((m) => [m.specifier, m.dependencies ?? []]));
  const seen = new Set<string>();
  const visit = (s: string) => {
    if (seen.has(s)) return;
    seen.add(s);
    for (const d of deps.get(s) ?? []) {
      if (!d.isDynamic && d.code?.specifier) visit(d.code.specifier);
    }
  };
  visit(new URL(entry, "file://").href);
  return seen;
}

Deno.test("a node without --metrics does not load prom-client or the metrics code", async () => {
  const node = await staticGraph(fileURLToPath(new URL("../../cmd/node.ts", import.meta.url)));
  assert.ok([...node].some((s) => s.endsWith("/core/node/node.ts")), "the graph was read");
  const loaded = [...node].filter((s) =>
    /prom-client|\/metrics|registry\/(service|methods)/.test(s)
  );
  assert.deepEqual(loaded, []);
  const metrics = await staticGraph(
    fileURLToPath(new URL("../../cmd/metrics.ts", import.meta.url)),
  );
  assert.ok([...metrics].some((s) => s.includes("prom-client")), "--metrics loads prom-client");
  const registryCode = [...metrics].filter((s) => /core\/registry\/|nodemailer/.test(s));
  assert.deepEqual(registryCode, [], "a node's metrics load no registry code");
});
