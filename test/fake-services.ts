// A service manager that does nothing and says nothing: for tests of the layers that only arm,
// disarm or kill through it. Each test overrides the calls it records or makes fail.
import type { ServiceManager } from "../src/ports.ts";

export function quietServices(over: Partial<ServiceManager> = {}): ServiceManager {
  return {
    showAll: async () => new Map(),
    start: async () => {},
    stop: async () => {},
    restart: async () => {},
    kill: async () => {},
    armFreeze: async () => {},
    disarmFreeze: async () => {},
    ...over,
  };
}
