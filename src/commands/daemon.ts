import { defineCommand } from "citty";

// Placeholder until its issue lands.
export default defineCommand({
  meta: { name: "daemon", description: "(not implemented yet)" },
  run() {
    throw new Error("not implemented");
  },
});
