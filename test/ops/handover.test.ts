// switchover --host's progress lines: one per phase the daemon's status shows, the command's only
// view into the hand-over while it waits for the answer.
import { expect, test } from "bun:test";
import { phaseLine } from "../../src/ops/handover.ts";

const so = (phase: string | null) => ({ target: null, force: false, requestedMs: 0, from: 0, why: "hand-over to host-b asked: waiting for the gap after the next window", host: "host-b", phase });

test("each phase of a cross-host switchover has its line; a single-host switchover has none", () => {
  expect(phaseLine(so("waiting"))).toContain("waiting for the gap after the next window");
  expect(phaseLine(so("fencing"))).toContain("fencing this host's runners");
  expect(phaseLine(so("committing"))).toContain("one etcd transaction");
  expect(phaseLine(so("handed"))).toContain("waiting for host-b to take it up");
  expect(phaseLine(so(null))).toBeNull();
});
