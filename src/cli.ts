#!/usr/bin/env bun
import { defineCommand, runMain } from "citty";
import { VERSION } from "./version.ts";

// Subcommands are imported lazily: `jorm-master runner N` must exec the node quickly, without
// loading the master, the simulator or the installer.
export const main = defineCommand({
  meta: {
    name: "jorm-master",
    version: VERSION,
    description:
      "Run several Jormungandr nodes on one server and keep exactly one of them producing blocks.\n" +
      "Start with `jorm-master demo` (simulated nodes) or `jorm-master install --runners 3`.",
  },
  subCommands: {
    daemon: () => import("./commands/daemon.ts").then((m) => m.default),
    runner: () => import("./commands/runner.ts").then((m) => m.default),
    install: () => import("./commands/install.ts").then((m) => m.default),
    uninstall: () => import("./commands/uninstall.ts").then((m) => m.default),
    status: () => import("./commands/status.ts").then((m) => m.default),
    config: () => import("./commands/config.ts").then((m) => m.default),
    demo: () => import("./commands/demo.ts").then((m) => m.default),
    sim: () => import("./commands/sim.ts").then((m) => m.default),
  },
});

if (import.meta.main) await runMain(main);
