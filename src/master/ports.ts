// The ports moved to src/ports.ts (the bottom layer: node/, sim/ and systemd/ use them too). This
// re-export keeps master/ importing "./ports.ts" until the files being changed in parallel land.
export * from "../ports.ts";
