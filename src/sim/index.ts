// The simulator's public surface, for the master's tests, the demo and the benches.
export { VirtualClock, RealScheduler, type Scheduler, type RealSchedulerOptions } from "./clock.ts";
export { Chain, ITN_CHAIN, testChainParams, type ChainParams, type SlotPos } from "./chain.ts";
export {
  SimNode,
  BOOT_PHASES,
  DEFAULT_BOOT_MS,
  NODE_VERSION,
  REJECT_TOO_LATE,
  rejectNotInEnclave,
  type BootDurations,
  type SimNodeOptions,
} from "./node.ts";
export {
  World,
  SimPoolTool,
  simTransport,
  SIM_POOL_SECRET,
  DEFAULT_RESTART_DELAY_MS,
  DEFAULT_SHUTDOWN_MS,
  type Fault,
  type WorldOptions,
  type ProcessEvent,
} from "./world.ts";
export { MemoryJournal, FileJournal, readJournalFile, type Journal, type JournalEntry } from "./journal.ts";
export {
  audit,
  couldSignIntervals,
  timelines,
  type AuditOptions,
  type AuditReport,
  type SlotVerdict,
  type UnproducibleReason,
  type Interval,
} from "./audit.ts";
export { serveNode, serveWorld, type SimServer } from "./server.ts";
