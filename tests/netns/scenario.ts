// Timing of the network-lab scenarios (tests/netns/scenario_*_test.ts): a short babel hello
// so that failures are noticed in seconds, and deadlines generous enough for 2 loaded cores.

/** Shared settings of the scenarios. */
export const SCENARIO = {
  /** Babel hello interval published by the registry, seconds. */
  hello: 4,
  /** Deadline for a new network to reach all-pairs reachability. */
  formMs: 150_000,
  /** Deadline for a restarted node to be reachable again. */
  rejoinMs: 90_000,
  /** Deadline for the network to route around a failure. */
  failoverMs: 90_000,
} as const;
