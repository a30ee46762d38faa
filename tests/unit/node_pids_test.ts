import assert from "node:assert/strict";
import { memoryLogger } from "../../core/log.ts";
import { manualClock } from "../../core/clock.ts";
import type { NodeFiles, NodeHost } from "../../core/node/parts.ts";
import { claimRunDir, NodeRunningError, parsePidLines } from "../../core/node/pids.ts";

type Procs = Record<number, { name: string; start: string; cmdline?: string }>;

function fakes(procs: Procs, files: Map<string, string>) {
  const killed: string[] = [];
  const host: NodeHost = {
    pid: 500,
    path: "/bin",
    memory: () => ({ rss: 0, heapUsed: 0, heapTotal: 0, external: 0 }),
    processName: (pid) => Promise.resolve(procs[pid]?.name ?? null),
    processStart: (pid) => Promise.resolve(procs[pid]?.start ?? null),
    listProcesses: () =>
      Promise.resolve(
        Object.entries(procs).map(([pid, p]) => ({
          pid: Number(pid),
          start: p.start,
          name: p.name,
          cmdline: p.cmdline ?? p.name,
        })),
      ),
    kill(pid, sig) {
      killed.push(`${sig} ${pid}`);
      if (sig === "SIGKILL" || procs[pid]?.name !== "stubborn") delete procs[pid];
    },
  };
  const fs = {
    readText: (p: string) => Promise.resolve(files.get(p) ?? null),
    writeText: (p: string, t: string) => Promise.resolve(void files.set(p, t)),
  } as unknown as NodeFiles;
  return { host, fs, killed };
}

Deno.test("children left by a dead node are stopped, but not a process that reused a pid", async () => {
  const files = new Map([["/run/children", "10 111 babeld\n11 222 openvpn\n12 333 openvpn\n"]]);
  const procs: Procs = {
    10: { name: "babeld", start: "111" },
    11: { name: "openvpn", start: "222" },
    12: { name: "bash", start: "999" }, // pid 12 now belongs to somebody else
  };
  const { host, fs, killed } = fakes(procs, files);
  const log = memoryLogger();
  const rec = await claimRunDir("/run", fs, host, manualClock(), log);
  assert.deepEqual(killed, ["SIGTERM 10", "SIGTERM 11"]);
  assert.ok(procs[12], "the unrelated process is untouched");
  assert.equal(files.get("/run/re6stnet.pid"), "500\n");
  assert.equal(files.get("/run/children"), "");
  procs[40] = { name: "babeld", start: "4040" };
  await rec.add(40, "babeld");
  assert.deepEqual(parsePidLines(files.get("/run/children")!), [
    { pid: 40, start: "4040", name: "babeld" },
  ]);
  await rec.remove(40);
  assert.equal(files.get("/run/children"), "");
});

Deno.test("a stale child that ignores SIGTERM gets SIGKILL after the grace time", async () => {
  const files = new Map([["/run/children", "10 111 stubborn\n"]]);
  const procs = { 10: { name: "stubborn", start: "111" } };
  const { host, fs, killed } = fakes(procs, files);
  const clock = manualClock();
  const done = claimRunDir("/run", fs, host, clock, memoryLogger(), 3000);
  for (let i = 0; i < 40 && killed.length < 2; i++) await clock.advance(100);
  await done;
  assert.deepEqual(killed, ["SIGTERM 10", "SIGKILL 10"]);
});

Deno.test("a run folder owned by a live node is refused", async () => {
  const files = new Map([["/run/re6stnet.pid", "77\n"]]);
  const { host, fs } = fakes({ 77: { name: "deno", start: "1" } }, files);
  await assert.rejects(
    claimRunDir("/run", fs, host, manualClock(), memoryLogger()),
    NodeRunningError,
  );
});

Deno.test("babeld and OpenVPN started with files of the run folder are stale even if unrecorded", async () => {
  const files = new Map<string, string>();
  const procs: Procs = {
    20: { name: "babeld", start: "1", cmdline: "babeld -c /run/babeld.conf" },
    21: { name: "openvpn", start: "2", cmdline: "openvpn --up /run/ovpn-hook --dev re6stnet-tcp" },
    22: { name: "openvpn", start: "3", cmdline: "openvpn --up /other/run/ovpn-hook" },
    23: { name: "sudo", start: "4", cmdline: "sudo re6st node -r /run/" },
  };
  const { host, fs, killed } = fakes(procs, files);
  await claimRunDir("/run", fs, host, manualClock(), memoryLogger());
  assert.deepEqual(killed, ["SIGTERM 20", "SIGTERM 21"]);
});
