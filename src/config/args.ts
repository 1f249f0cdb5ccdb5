// Arguments shared by every command that reads the configuration or logs, so they are spelled and
// documented the same everywhere: `...configArgs, ...logLevelArgs` in a command's args.
import type { ArgsDef } from "citty";
import { CONFIG_PATH_ENV, DEFAULT_CONFIG_PATH } from "./load.ts";

export const configArgs = {
  config: {
    type: "string",
    description: `Configuration file (default: $${CONFIG_PATH_ENV}, else ${DEFAULT_CONFIG_PATH})`,
    valueHint: "PATH",
  },
} as const satisfies ArgsDef;

export const logLevelArgs = {
  "log-level": {
    type: "string",
    description: "error, warn, info or debug (default: $JORM_MASTER_LOG_LEVEL, else the config's log_level)",
    valueHint: "LEVEL",
  },
} as const satisfies ArgsDef;
