import assert from "node:assert/strict";
import { countConnections, databaseBytes, interfaceCounters } from "../../platform/net_counters.ts";

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0
   2: 0100007F:1F90 0100007F:C351 06 00000000:00000000 00:00000000 00000000     0
   3: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0
   4: 0100007F:1F90 0100007F:C352 08 00000000:00000000 00:00000000 00000000     0
`;
const TCP6 = `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:D000 01 0
`;

Deno.test("open connections of a port: established and closing, not listening or time-wait", () => {
  // Port 0x1F90 = 8080: one established and one close-wait over IPv4, one over IPv6; the
  // client side of line 3 has another local port.
  assert.equal(countConnections([TCP, TCP6], 8080), 3);
  assert.equal(countConnections([TCP], 80), 0);
  assert.equal(countConnections(["", "garbage"], 8080), 0);
});

Deno.test("interface counters come from the statistics folder; a missing interface is null", async () => {
  const sys = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${sys}/re6stnet1/statistics`, { recursive: true });
    for (
      const [f, v] of [["rx_bytes", 10], ["tx_bytes", 20], ["rx_packets", 1], ["tx_packets", 2]]
    ) {
      await Deno.writeTextFile(`${sys}/re6stnet1/statistics/${f}`, `${v}\n`);
    }
    assert.deepEqual(await interfaceCounters("re6stnet1", sys), {
      rxBytes: 10,
      txBytes: 20,
      rxPackets: 1,
      txPackets: 2,
    });
    assert.equal(await interfaceCounters("re6stnet9", sys), null);
    assert.equal(await interfaceCounters("../etc", sys), null);
  } finally {
    await Deno.remove(sys, { recursive: true });
  }
});

Deno.test("database size counts the file and its journal", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(await databaseBytes(`${dir}/registry.db`), null);
    await Deno.writeFile(`${dir}/registry.db`, new Uint8Array(4096));
    await Deno.writeFile(`${dir}/registry.db-wal`, new Uint8Array(100));
    assert.equal(await databaseBytes(`${dir}/registry.db`), 4196);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
