import assert from "node:assert/strict";
import { parseAddressList } from "../../core/addressing.ts";
import { deriveModel } from "../../core/babel/model.ts";
import {
  countryForbids,
  distantCandidates,
  neighboursOriginating,
  routesThrough,
  tunnelLimit,
  tunnelScore,
  tunnelToRetire,
  usableAddresses,
} from "../../core/node/tunnels/policy.ts";
import { ll, NET, P, route, snapshot } from "../helpers/tunnel_fakes.ts";

const none = new Set<string>();

Deno.test("a node serving nobody keeps at most two client tunnels, else client_count", () => {
  assert.equal(tunnelLimit(10, false, false), 2);
  assert.equal(tunnelLimit(1, false, false), 1);
  assert.equal(tunnelLimit(10, true, false), 10);
  assert.equal(tunnelLimit(10, false, true), 10);
});

Deno.test("the tunnel score counts node routes and ranks --neighbour peers last", () => {
  const m = deriveModel(
    snapshot([
      { prefix: P(2), iface: "re6stnet1", behind: [P(5), P(6)] },
      { prefix: P(3), iface: "re6stnet2", gateway: true },
    ]),
    NET,
  );
  assert.equal(tunnelScore(m, P(2), none), 3);
  assert.equal(tunnelScore(m, P(3), none), 1);
  assert.equal(tunnelScore(m, P(4), none), -1, "not a neighbour: lowest");
  assert.ok(tunnelScore(m, P(3), new Set([P(3)])) > tunnelScore(m, P(2), none));
});

Deno.test("the tunnel to retire is the one bringing the fewest routes", () => {
  const m = deriveModel(
    snapshot([
      { prefix: P(2), iface: "re6stnet1", behind: [P(5), P(6)] },
      { prefix: P(3), iface: "re6stnet2", behind: [P(7)] },
      { prefix: P(4), iface: "re6stnet3", behind: [P(8), P(10), P(11)] },
    ]),
    NET,
  );
  const base = { connections: [P(2), P(3), P(4)], removing: none, model: m, keep: none };
  assert.equal(tunnelToRetire({ ...base, limit: 3 }), P(3));
  assert.equal(tunnelToRetire({ ...base, limit: 4 }), null, "fewer tunnels than the limit");
  assert.equal(tunnelToRetire({ ...base, limit: 2, removing: new Set([P(3)]) }), P(2));
  assert.equal(tunnelToRetire({ ...base, limit: 3, keep: new Set([P(3)]) }), P(2));
  assert.equal(
    tunnelToRetire({ ...base, limit: 1, keep: new Set([P(2), P(3), P(4)]) }),
    null,
    "only --neighbour tunnels: none retired",
  );
});

Deno.test("a tunnel whose peer is not a Babel neighbour yet is retired first", () => {
  const m = deriveModel(snapshot([{ prefix: P(2), iface: "re6stnet1" }]), NET);
  assert.equal(
    tunnelToRetire({ connections: [P(2), P(3)], removing: none, model: m, keep: none, limit: 2 }),
    P(3),
  );
});

Deno.test("distant candidates pop --neighbour peers first, the others at random", () => {
  const rnd = [0.1, 0.9, 0.5, 0.3];
  let i = 0;
  const stack = distantCandidates([P(2), P(3), P(4), P(5)], new Set([P(4)]), () => rnd[i++]);
  assert.equal(stack.pop(), P(4));
  assert.equal(stack.pop(), P(3));
  assert.equal(stack.pop(), P(5));
  assert.equal(stack.pop(), P(2));
});

Deno.test("disabled protocols are filtered out of a peer's addresses", () => {
  const list = parseAddressList("1.2.3.4,1194,udp;1.2.3.4,1194,tcp;2001:db8::1,1194,tcp6");
  const use = (disabled: string[]) =>
    usableAddresses(list, { disabled, sameCountry: [], myCountry: () => undefined })
      .map((a) => a.proto);
  assert.deepEqual(use(["udp", "udp6"]), ["tcp", "tcp6"]);
  assert.deepEqual(use([]), ["udp", "tcp", "tcp6"]);
  assert.deepEqual(use(["tcp", "tcp6"]), ["udp"]);
});

Deno.test("same_country keeps tunnels inside a listed country and out of it otherwise", () => {
  const sc = ["FR", "DE"];
  assert.equal(countryForbids(sc, "FR", "FR"), false);
  assert.equal(countryForbids(sc, "FR", "DE"), true);
  assert.equal(countryForbids(sc, "FR", "US"), true);
  assert.equal(countryForbids(sc, "US", "FR"), true);
  assert.equal(countryForbids(sc, "US", "JP"), false);
  assert.equal(countryForbids(sc, undefined, "FR"), false, "our country unknown: no filter");
  assert.equal(countryForbids(sc, "FR", undefined), true, "their country unknown: skipped");
  assert.equal(countryForbids([], "FR", "DE"), false);
  const list = parseAddressList("1.1.1.1,1194,tcp,FR;2.2.2.2,1194,tcp,DE;3.3.3.3,1194,tcp");
  const kept = usableAddresses(list, {
    disabled: [],
    sameCountry: sc,
    myCountry: (f) => (f === 4 ? "FR" : undefined),
    lookupCountry: (ip) => (ip === "3.3.3.3" ? "FR" : undefined),
  });
  assert.deepEqual(kept.map((a) => a.ip), ["1.1.1.1", "3.3.3.3"]);
});

Deno.test("a served client's neighbour is found by its own routes, installed or not", () => {
  const s = snapshot([{ prefix: P(2), iface: "re6stnet-tcp", behind: [P(5)] }], [
    route(P(3), "fe80::3", "re6stnet-tcp", 0, { installed: false }),
    route(P(6), "fe80::3", "re6stnet-tcp", 96),
  ]);
  assert.deepEqual([...neighboursOriginating(s, NET, P(3))], ["fe80::3%re6stnet-tcp"]);
  assert.deepEqual(
    routesThrough(s, NET, `${ll(P(2))}%re6stnet-tcp`).sort(),
    [P(2), P(5)].sort(),
  );
  assert.deepEqual(routesThrough(s, NET, `${ll(P(2))}%re6stnet-tcp`, P(2)), [P(5)]);
  assert.deepEqual(routesThrough(s, NET, "fe80::3%re6stnet-tcp"), [P(6)]);
});
