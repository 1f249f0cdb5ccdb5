// Replaced at build time by scripts/build.ts (--define); from source it reads package.json.
declare const JORM_MASTER_VERSION: string | undefined;

import pkg from "../package.json" with { type: "json" };

export const VERSION: string =
  typeof JORM_MASTER_VERSION === "string" ? JORM_MASTER_VERSION : `${pkg.version}-dev`;
