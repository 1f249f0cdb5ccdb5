// Who may use the control socket: root and the runners' group (the primary group of the runner user,
// config systemd.user). The system unit starts the daemon with that group as its primary group
// (Group=, src/systemd/units.ts), so the socket is born with it; this checks that it was, tries a
// chown where it was not (it works only for a daemon that is a member of the group, and never in the
// hardened unit: SystemCallFilter=~@privileged), and otherwise keeps a socket only root can use or
// refuses one whose group is anything else (fail closed: no control channel rather than a wider one).

import { chownSync, readFileSync, statSync } from "node:fs";

/** The primary gid of `user` in passwd(5) text, or null when the user is not listed. */
export function primaryGidIn(passwdText: string, user: string): number | null {
  for (const line of passwdText.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || f[0] !== user) continue;
    const gid = Number(f[3]);
    return Number.isInteger(gid) && gid >= 0 ? gid : null;
  }
  return null;
}

/** The runner user's primary gid from /etc/passwd (the unit has no NSS lookups beyond files), or null. */
export function runnersGid(user: string, passwdPath = "/etc/passwd"): number | null {
  try {
    return primaryGidIn(readFileSync(passwdPath, "utf8"), user);
  } catch {
    return null;
  }
}

/**
 * The gid the socket must carry: the runner user's primary gid from /etc/passwd; for a user only NSS
 * knows (LDAP), the daemon's own primary gid when it is not root's, which the unit's Group= (rendered
 * by install from that user's primary group) gave it. null: unknown (the socket stays root-only).
 */
export function expectedSocketGid(user: string, ownGid: number, passwdPath = "/etc/passwd"): number | null {
  return runnersGid(user, passwdPath) ?? (ownGid !== 0 ? ownGid : null);
}

export interface SocketGroupOps {
  gidOf(path: string): number;
  /** chown(path, -1, gid): the owner stays root */
  chgrp(path: string, gid: number): void;
}

export const realSocketGroupOps: SocketGroupOps = {
  gidOf: (path) => statSync(path).gid,
  chgrp: (path, gid) => chownSync(path, -1, gid),
};

export type SocketGroupOutcome =
  /** root and the runners' group may use it */
  | { kind: "runners"; gid: number; changed: boolean }
  /** only root may use it (group root): narrower than wanted, kept, with a warning */
  | { kind: "root-only"; why: string }
  /** its group is neither: the caller must remove it */
  | { kind: "refuse"; why: string };

const ROOT_GID = 0;

/** Gives the socket at `path` the group `wantedGid` if it does not have it yet. null: the user is unknown. */
export function restrictSocketGroup(path: string, wantedGid: number | null, ops: SocketGroupOps = realSocketGroupOps): SocketGroupOutcome {
  const gid = ops.gidOf(path);
  if (wantedGid !== null && gid === wantedGid) return { kind: "runners", gid, changed: false };
  let why: string;
  if (wantedGid === null) {
    why = "the runner user is not in /etc/passwd, so its group is unknown";
  } else {
    try {
      ops.chgrp(path, wantedGid);
      const now = ops.gidOf(path);
      if (now === wantedGid) return { kind: "runners", gid: now, changed: true };
      why = `chown to gid ${wantedGid} left gid ${now}`;
    } catch (e) {
      why = `it is gid ${gid} and chown to the runners' gid ${wantedGid} failed (${e instanceof Error ? e.message : String(e)}); the unit needs Group= (re-run jorm-master install)`;
    }
  }
  if (gid === ROOT_GID) return { kind: "root-only", why };
  return { kind: "refuse", why: `${why}; its group (gid ${gid}) is not the runners'` };
}
