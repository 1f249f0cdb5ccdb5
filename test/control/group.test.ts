// Who may use the control socket (issue 12 point 1): root and the runners' group in system scope.
// The pure check with fakes, startControl with a fake group resolver, and, as root only (CI is root),
// the real kernel with a capability-less root (setpriv): the socket is born with the primary group the
// unit gives (Group=), a chown to a supplementary group works without capabilities and fails without
// the membership, and a socket whose group is neither the runners' nor root's is removed.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectedSocketGid, primaryGidIn, restrictSocketGroup, runnersGid, type SocketGroupOps } from "../../src/control/group.ts";
import { startControl } from "../../src/control/index.ts";
import { CONTROL_SOCKET_MODE } from "../../src/control/server.ts";

const dir = mkdtempSync(join(tmpdir(), "jm-sockgroup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const sockPath = () => join(dir, `g${n++}.sock`);
const isRoot = process.getuid?.() === 0;
const setpriv = Bun.which("setpriv");
/** A gid no one here has: the test does not need the group to exist. */
const RUNNERS_GID = 4242;
const OTHER_GID = 4343;

function fakeOps(gid: number, chgrpOk: boolean): SocketGroupOps & { calls: number[] } {
  let current = gid;
  const calls: number[] = [];
  return {
    calls,
    gidOf: () => current,
    chgrp: (_p, g) => {
      calls.push(g);
      if (!chgrpOk) throw new Error("EPERM: operation not permitted, chown");
      current = g;
    },
  };
}

describe("the runners' gid", () => {
  test("is the runner user's primary gid in /etc/passwd, null when the user is missing", () => {
    const passwd = "root:x:0:0:root:/root:/bin/bash\ncardano:x:998:997::/var/lib/cardano:/usr/sbin/nologin\nbad:x:1:zz::/:/bin/sh\n";
    expect(primaryGidIn(passwd, "cardano")).toBe(997);
    expect(primaryGidIn(passwd, "card")).toBeNull();
    expect(primaryGidIn(passwd, "bad")).toBeNull();
    expect(runnersGid("root")).toBe(0);
    expect(runnersGid("cardano", join(dir, "no-such-passwd"))).toBeNull();
  });
  test("a user /etc/passwd does not list (LDAP): the daemon's own primary gid from the unit's Group=, unless root's", () => {
    const none = join(dir, "no-such-passwd");
    expect(expectedSocketGid("cardano", RUNNERS_GID, none)).toBe(RUNNERS_GID);
    expect(expectedSocketGid("cardano", 0, none)).toBeNull();
    expect(expectedSocketGid("root", RUNNERS_GID)).toBe(0);
  });
});

describe("restrictSocketGroup", () => {
  test("a socket born with the runners' group is kept as it is (no chown: the unit's Group= did it)", () => {
    const ops = fakeOps(RUNNERS_GID, false);
    expect(restrictSocketGroup("/s", RUNNERS_GID, ops)).toEqual({ kind: "runners", gid: RUNNERS_GID, changed: false });
    expect(ops.calls).toEqual([]);
  });
  test("otherwise it is handed to the runners' group when chown is allowed", () => {
    const ops = fakeOps(0, true);
    expect(restrictSocketGroup("/s", RUNNERS_GID, ops)).toEqual({ kind: "runners", gid: RUNNERS_GID, changed: true });
    expect(ops.calls).toEqual([RUNNERS_GID]);
  });
  test("a root-group socket that cannot be handed over stays root-only, saying why", () => {
    const r = restrictSocketGroup("/s", RUNNERS_GID, fakeOps(0, false));
    expect(r.kind).toBe("root-only");
    expect(r.kind === "root-only" && r.why).toMatch(/Group=.*jorm-master install/);
    expect(restrictSocketGroup("/s", null, fakeOps(0, true)).kind).toBe("root-only");
  });
  test("a socket of any other group is refused (fail closed)", () => {
    expect(restrictSocketGroup("/s", RUNNERS_GID, fakeOps(OTHER_GID, false)).kind).toBe("refuse");
    expect(restrictSocketGroup("/s", null, fakeOps(OTHER_GID, true)).kind).toBe("refuse");
  });
});

describe("startControl with a group resolver", () => {
  const logs: string[] = [];
  const log = { info: (m: string) => logs.push(`info ${m}`), warn: (m: string) => logs.push(`warn ${m}`), error: (m: string) => logs.push(`error ${m}`), debug: (m: string) => logs.push(`debug ${m}`) };

  test.skipIf(!isRoot)("the socket carries the runners' gid, mode 0660, once started", async () => {
    const path = sockPath();
    const c = await startControl({ path, version: "t", log, runnersGid: () => RUNNERS_GID });
    try {
      expect(c.path).toBe(path);
      const st = statSync(path);
      expect(st.gid).toBe(RUNNERS_GID);
      expect(st.uid).toBe(0);
      expect(st.mode & 0o777).toBe(CONTROL_SOCKET_MODE);
    } finally {
      await c.close();
    }
  });
  test("a socket it cannot restrict is removed and the daemon runs without a control channel", async () => {
    const path = sockPath();
    logs.length = 0;
    const c = await startControl({ path, version: "t", log, runnersGid: () => RUNNERS_GID, groupOps: fakeOps(OTHER_GID, false) });
    expect(c.path).toBeNull();
    expect(existsSync(path)).toBe(false);
    expect(logs.join("\n")).toMatch(/error control socket .*removed: .*not the runners'.*commands cannot reach this daemon/);
    await c.close();
  });
  test("user scope (no resolver): the user's own group, no check", async () => {
    const path = sockPath();
    const c = await startControl({ path, version: "t", log, groupOps: fakeOps(OTHER_GID, false) });
    expect(c.path).toBe(path);
    await c.close();
  });
});

/** Runs the bind fixture as root with no capabilities at all, with the given extra setpriv flags. */
async function bindWithoutCaps(path: string, gid: number, setprivArgs: string[]) {
  const fixture = join(import.meta.dir, "fixtures/bind-socket.ts");
  const p = Bun.spawn([setpriv!, ...setprivArgs, "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", process.execPath, fixture, path, String(gid)], { stdout: "pipe", stderr: "pipe" });
  const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
  if (code !== 0) throw new Error(`setpriv exited ${code}: ${err}`);
  const r = JSON.parse(out.trim().split("\n").pop()!) as { capEff: string; started: boolean; gid?: number; error?: string; exists?: boolean; warnings: string[] };
  expect(Number.parseInt(r.capEff, 16)).toBe(0); // really no capabilities
  return r;
}

describe.skipIf(!isRoot || !setpriv)("the real kernel, root without capabilities (setpriv)", () => {
  test("the unit's way: with the runners' group as primary group (Group=) the socket is born with it", async () => {
    const r = await bindWithoutCaps(sockPath(), RUNNERS_GID, ["--regid", String(RUNNERS_GID), "--clear-groups"]);
    expect(r).toMatchObject({ started: true, gid: RUNNERS_GID, warnings: [] });
  });
  test("chown to a supplementary group works without capabilities", async () => {
    const r = await bindWithoutCaps(sockPath(), RUNNERS_GID, ["--regid", "0", "--groups", String(RUNNERS_GID)]);
    expect(r).toMatchObject({ started: true, gid: RUNNERS_GID, warnings: [] });
  });
  test("without the membership the chown fails: the socket stays root-only, with a warning", async () => {
    const r = await bindWithoutCaps(sockPath(), RUNNERS_GID, ["--regid", "0", "--clear-groups"]);
    expect(r.started).toBe(true);
    expect(r.gid).toBe(0);
    expect(r.warnings.join("\n")).toMatch(/only root can use .*chown .*failed/);
  });
  test("a socket born with another group that cannot be handed over is removed", async () => {
    const path = sockPath();
    const r = await bindWithoutCaps(path, RUNNERS_GID, ["--regid", String(OTHER_GID), "--clear-groups"]);
    expect(r).toMatchObject({ started: false, exists: false });
    expect(r.error).toMatch(/removed: .*gid 4343/);
    expect(existsSync(path)).toBe(false);
  });
  test("who may use it: a member of the runners' group gets an answer, another user is told permission denied", async () => {
    chmodSync(dir, 0o755); // the socket's own mode and group decide, not the test's temp dir
    const path = sockPath();
    const log = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };
    const c = await startControl({ path, version: "t", log, runnersGid: () => RUNNERS_GID });
    try {
      const ask = async (extra: string[]) => {
        const fixture = join(import.meta.dir, "fixtures/ask.ts");
        const p = Bun.spawn([setpriv!, "--reuid", "65534", "--regid", "65534", ...extra, "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", process.execPath, fixture, path], { stdout: "pipe", stderr: "pipe", env: { ...process.env, HOME: "/" } });
        const [code, out, err] = await Promise.all([p.exited, new Response(p.stdout).text(), new Response(p.stderr).text()]);
        if (code !== 0) throw new Error(`ask exited ${code}: ${err}`);
        return JSON.parse(out.trim().split("\n").pop()!) as { kind: string; error?: string };
      };
      expect((await ask(["--groups", String(RUNNERS_GID)])).kind).toBe("answer");
      const stranger = await ask(["--clear-groups"]);
      expect(stranger.kind).toBe("failed");
      expect(stranger.error).toMatch(/permission denied \(only root and the runners' group/);
    } finally {
      await c.close();
    }
  });
});
