import { defineCommand } from "citty";

// Placeholder until its issue lands.
export default defineCommand({
  meta: { name: "runner", description: "(not implemented yet)" },
  run() {
    throw new Error("not implemented");
  },
});
