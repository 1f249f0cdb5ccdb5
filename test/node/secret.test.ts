// node_secret.yaml: read at the moment of the call, validated, and never quoted in an error.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, EXIT_CONFIG } from "../../src/errors.ts";
import { readNodeSecret, secretModeProblem, secretProblem } from "../../src/node/secret.ts";
import { fixture } from "./fixtures.ts";

const SIG = "kes25519-12-sk1qqqqSECRETSECRETnotarealkey";
const VRF = "vrf_sk1SECRETSECRETnotarealkey";
const NODE_ID = "ea830e5d9647af89a5e9a4d4089e6e855891a533316adf4a42b7bf1372389b74";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "jorm-secret-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function secretFile(name: string, text: string, mode = 0o600): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  await chmod(path, mode); // not through writeFile's mode, which the umask trims
  return path;
}

async function rejection(path: string): Promise<ConfigError> {
  try {
    await readNodeSecret(path);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected readNodeSecret to throw");
}

describe("readNodeSecret", () => {
  test("a file other users may read or write is refused before it is read, naming the mode, never the content", async () => {
    const text = `genesis:\n  sig_key: ${SIG}\n  vrf_key: ${VRF}\n  node_id: ${NODE_ID}\n`;
    for (const mode of [0o602, 0o644, 0o660]) {
      const err = await rejection(await secretFile(`mode-${mode.toString(8)}.yaml`, text, mode));
      expect(err.message).toContain(`mode 0${mode.toString(8)}`);
      expect(err.message).not.toContain(SIG);
    }
    expect(await readNodeSecret(await secretFile("mode-400.yaml", text, 0o400))).toEqual({ genesis: { sig_key: SIG, vrf_key: VRF, node_id: NODE_ID } });
  });

  test("a genesis secret becomes its JSON form", async () => {
    const path = await secretFile("genesis.yaml", `genesis:\n  sig_key: ${SIG}\n  vrf_key: ${VRF}\n  node_id: ${NODE_ID}\n`);
    expect(await readNodeSecret(path)).toEqual({ genesis: { sig_key: SIG, vrf_key: VRF, node_id: NODE_ID } });
  });

  test("bft only, and genesis with bft", async () => {
    const bft = await secretFile("bft.yaml", "bft:\n  signing_key: ed25519_sk1FAKE\n");
    expect(await readNodeSecret(bft)).toEqual({ bft: { signing_key: "ed25519_sk1FAKE" } });
    const both = await secretFile(
      "both.yaml",
      `genesis:\n  sig_key: ${SIG}\n  vrf_key: ${VRF}\n  node_id: ${NODE_ID}\nbft:\n  signing_key: ed25519_sk1FAKE\n`,
    );
    expect(Object.keys(await readNodeSecret(both)).sort()).toEqual(["bft", "genesis"]);
  });

  test("an all-digit node_id stays the exact string (YAML would make it the number 0)", async () => {
    const zeros = "0".repeat(64);
    const exp = `${"1".repeat(30)}e${"2".repeat(33)}`; // a float to YAML's core schema
    const path = await secretFile("digits.yaml", `genesis:\n  sig_key: ${SIG}\n  vrf_key: ${VRF}\n  node_id: ${zeros}\n`);
    expect(await readNodeSecret(path)).toMatchObject({ genesis: { node_id: zeros } });
    const path2 = await secretFile("float.yaml", `genesis:\n  sig_key: ${SIG}\n  vrf_key: ${VRF}\n  node_id: ${exp}\n`);
    expect(await readNodeSecret(path2)).toMatchObject({ genesis: { node_id: exp } });
  });

  test("the OpenAPI request examples (JSON is YAML) are accepted as they are", async () => {
    for (const name of ["genesis", "bft"]) {
      const text = await fixture(`openapi/leaders.post.request.${name}.json`);
      const path = await secretFile(`openapi-${name}.yaml`, text);
      expect(await readNodeSecret(path)).toEqual(JSON.parse(text));
    }
  });

  test("read at the moment of the call: a rewritten file is picked up", async () => {
    const path = await secretFile("rotating.yaml", "bft:\n  signing_key: ed25519_sk1OLD\n");
    expect(await readNodeSecret(path)).toEqual({ bft: { signing_key: "ed25519_sk1OLD" } });
    await writeFile(path, "bft:\n  signing_key: ed25519_sk1NEW\n");
    expect(await readNodeSecret(path)).toEqual({ bft: { signing_key: "ed25519_sk1NEW" } });
  });

  test("a missing file names the path; exit code 78", async () => {
    const path = join(dir, "absent.yaml");
    const error = await rejection(path);
    expect(error.message).toBe(`node secret ${path}: file not found`);
    expect(error.exitCode).toBe(EXIT_CONFIG);
  });

  test("an unreadable file names the path", async () => {
    if (process.getuid?.() === 0) return; // root reads anything; the branch is the same code as ENOENT
    const path = await secretFile("locked.yaml", "bft:\n  signing_key: x\n");
    await chmod(path, 0o000);
    expect((await rejection(path)).message).toBe(`node secret ${path}: permission denied`);
  });

  test("a missing key is named, and no key material appears in the message", async () => {
    const path = await secretFile("novrf.yaml", `genesis:\n  sig_key: ${SIG}\n  node_id: ${NODE_ID}\n`);
    const error = await rejection(path);
    expect(error.message).toBe(`node secret ${path}: missing genesis.vrf_key`);
    expect(error.message).not.toContain("SECRET");
    expect(error.message).not.toContain(NODE_ID);
  });

  test("invalid YAML: position only, never the offending line (it may be a key)", async () => {
    const path = await secretFile("broken.yaml", `genesis:\n  sig_key: ${SIG}\n   vrf_key: [${VRF}\n  node_id: "${NODE_ID}\n`);
    const error = await rejection(path);
    expect(error.message).toMatch(new RegExp(`^node secret ${path}: not valid YAML \\(line \\d+, column \\d+\\)$`));
    expect(error.message).not.toContain("SECRET");
  });

  test("YAML warnings (which quote the source line) are not printed", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      const path = await secretFile("tagged.yaml", `genesis:\n  sig_key: !tag ${SIG}\n  vrf_key: ${VRF}\n  node_id: ${NODE_ID}\n`);
      await readNodeSecret(path);
      await Bun.sleep(5);
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings).toEqual([]);
  });

  test("a file with neither section, or a non-mapping", async () => {
    expect((await rejection(await secretFile("empty.yaml", "# nothing\n"))).message).toContain("expected a mapping");
    expect((await rejection(await secretFile("other.yaml", "foo: bar\n"))).message).toContain(
      "missing genesis (sig_key, vrf_key, node_id) or bft (signing_key)",
    );
  });
});

describe("secretProblem", () => {
  const genesis = { sig_key: SIG, vrf_key: VRF, node_id: NODE_ID };
  test("accepts the documented shapes and extra keys (the node ignores them)", () => {
    expect(secretProblem({ genesis })).toBeNull();
    expect(secretProblem({ bft: { signing_key: "k" } })).toBeNull();
    expect(secretProblem({ genesis, bft: { signing_key: "k" }, comment: "x" })).toBeNull();
  });
  test("names the first problem by key only", () => {
    expect(secretProblem({ genesis: { ...genesis, sig_key: "" } })).toBe("missing genesis.sig_key");
    expect(secretProblem({ genesis: { vrf_key: VRF, node_id: NODE_ID } })).toBe("missing genesis.sig_key");
    expect(secretProblem({ genesis: { ...genesis, node_id: "xyz" } })).toBe("genesis.node_id must be 64 hex characters (the stake pool id)");
    expect(secretProblem({ genesis: "flat" })).toBe("genesis must be a mapping");
    expect(secretProblem({ bft: {} })).toBe("missing bft.signing_key");
    expect(secretProblem({ bft: [] })).toBe("bft must be a mapping");
    expect(secretProblem(["a"])).toContain("expected a mapping");
  });
});

describe("secretModeProblem: only the owner may read or write the key", () => {
  test("owner-only modes pass (0600, 0400, 0700, 0000 for a root-only file)", () => {
    for (const mode of [0o600, 0o400, 0o700, 0o000, 0o100600]) expect(secretModeProblem("/s", mode)).toBeNull();
  });
  test("readable by the group or others: refused, as before", () => {
    expect(secretModeProblem("/s", 0o644)).toBe("node secret /s has mode 0644, so other users can read it; restrict it: chmod 600 /s");
    expect(secretModeProblem("/s", 0o640)).toContain("has mode 0640, so other users can read it");
  });
  test("writable by the group or others (0602, 0620): refused, another user could replace the key", () => {
    expect(secretModeProblem("/s", 0o602)).toBe("node secret /s has mode 0602, so other users can write it; restrict it: chmod 600 /s");
    expect(secretModeProblem("/s", 0o620)).toContain("so other users can write it");
    expect(secretModeProblem("/s", 0o666)).toContain("so other users can read and write it");
  });
});
