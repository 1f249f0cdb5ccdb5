import type { OperatorIntent } from "./intent.ts";
import type { LeaderLog, NodeResult, NodeStats, Settings } from "../node/types.ts";
import type { UnitState } from "../ports.ts";
import type { ClusterObs } from "./cluster.ts";

/** What one tick saw of one runner. Every field can be missing or failed: the core decides on that. */
export interface RunnerObs {
  id: number;
  /** null when systemctl could not be asked */
  unit: UnitState | null;
  stats: NodeResult<NodeStats> | null;
  /** Asked every tick; a timeout while stats answer means the enclave is busy (schedule being computed). */
  leaders: NodeResult<number[]> | null;
  /** Asked only when memory says this runner's logs are stale */
  logs: NodeResult<LeaderLog[]> | null;
}

export interface Observation {
  /** When the observation was complete */
  atMs: number;
  /** When its first request went out (every answer came after it); atMs when absent */
  fromMs?: number;
  settings: Settings | null;
  runners: RunnerObs[];
  /** PoolTool majority max, when configured and known */
  majorityMax: number | null;
  /** What the operator asked for (holds, a switchover): see intent.ts */
  intent?: OperatorIntent;
  /** Cluster mode only: what the etcd signer lease allows this host (master/cluster.ts) */
  cluster?: ClusterObs;
}

/** Whether a runner can sign right now, as far as can be proven. */
export type Capability =
  | "stopped" // no process
  | "frozen" // SIGSTOP verified
  | "keyless" // GET /leaders = [] (or passive boot, or an unbroken proof from this incarnation)
  | "holder" // holds the key, REST answers
  | "booting-holder" // key mode boot, before Running: a leader from boot, REST 503
  | "unknown"; // alive, REST dead or hanging, no proof: assume it can sign

export interface RunnerView {
  id: number;
  cap: Capability;
  pid: number;
  running: boolean; // node state Running and REST answering
  responsive: boolean; // /node/stats answered
  nodeState: string | null;
  height: number | null;
  leaderIds: number[] | null;
  /** leaders call timed out while stats answered: enclave locked */
  busy: boolean;
  unitActive: boolean;
  frozen: boolean;
}

export interface RunnerMemory {
  /** MainPID of the incarnation this memory is about; a new pid resets the rest */
  pid: number;
  firstSeenMs: number;
  runningSinceMs: number | null;
  /** Its REST has answered (even 503) at least once: a refused connection now is not a slow start */
  answered: boolean;
  /** When its workers started (now - uptime): a --secret runner computed its schedule then */
  bootedAtMs: number | null;
  deadSinceMs: number | null;
  /** This incarnation was verified key-less and nothing was posted to it since */
  keylessProof: boolean;
  lastLeaderIds: number[];
  frozenByUs: "boot" | "fence" | null;
  /** Slots (this and next epoch, as "epoch.slot" keys → ms) this runner has Pending in its logs */
  pendingSlots: number[]; // absolute slot numbers
  logsReadMs: number | null;
  logsWanted: boolean;
  /** The key was held continuously since this time (for knowing who computed the epoch's schedule) */
  holderSinceMs: number | null;
  /** Behind the reference height (by a block or more) at every tick since this time */
  behindSinceMs?: number | null;
  /** This incarnation started while every boot permit said passive: it boots without the key */
  bootedPassive?: boolean;
  /** GET /leaders answered [] at every answer since this time, with no key posted in between */
  keylessSinceMs?: number | null;
  /** Proven unable to sign (stopped, frozen or verified key-less) at every tick since this time:
   *  a window that opened later cannot have been used by it */
  unableSinceMs: number | null;
  /** When systemd saw this incarnation's unit enter its state (its start, for a live process); null:
   *  not known. A proof about the process holds only while systemd keeps reporting this same start. */
  startedMs: number | null;
  /** This incarnation has been seen Running: one that never was has computed nothing, signed nothing */
  everRunning: boolean;
  /** Carried across incarnations: the latest time this runner, in any incarnation (even one never
   *  seen), may have been able to sign. A window that opened later cannot have been used by it. */
  ableUntilMs: number;
  /** Carried across incarnations: at the last tick it was not proven unable to sign */
  ableAtLastTick: boolean;
}

export interface Memory {
  signer: number | null;
  /** Absolute slot numbers (epoch*slotsPerEpoch+slot) of the pool's leader events, from any runner's logs */
  events: number[];
  /** Epochs whose full event list is known (some runner that computed it reported its logs) */
  knownEpochs: number[];
  runners: Record<number, RunnerMemory>;
  /** Standbys given the key so they compute the next epoch's schedule; exempt from demotion until the boundary */
  boundary: {
    epoch: number;
    coHolders: number[];
    /** key removals sent right at the boundary */ stripped?: boolean;
    /** Cluster mode: the co-holders' switches fire by this time at the latest (the slot-1 rule); the
     *  lease shell keeps them at the earlier of it and the lease allowance (master/cluster.ts) */
    switchAtMs?: number;
  } | null;
  tip: { lastSentMs: number; lastSentHeight: number };
  lastTickMs: number | null;
  /** Consecutive failures per action ("kind#id"): housekeeping backs off, fences stop rushing */
  failures: Record<string, { count: number; lastMs: number }>;
  /** Last observed time from a unit's start to Running (sizes the boot mode: coverage.ts) */
  bootObservedMs?: number | null;
  /** The same per runner: a runner that boots slowly is judged by its own boots */
  bootObservedByRunnerMs?: Record<number, number>;
  /** Key mode boot: the cold standby restarted to compute the current epoch, and its deadline */
  warming?: { id: number; epoch: number; untilMs: number; /** the restart was sent (after a tick whose permit said key) */ restarted: boolean; /** the pid it restarted */ pid?: number } | null;
  /** Per runner: since when every boot permit written said passive (the plans of two ticks in a row) */
  passivePermitSinceMs?: Record<number, number>;
  /** The last plan's boot modes (written as boot permits after that tick) */
  lastBootModes?: Record<number, "key" | "passive">;
  /** Incarnations (runner id and pid) already restarted for warmth in this epoch: one try each, so a
   *  runner whose warming boot still ends cold is not rebooted in a loop (a new crash may try again) */
  warmTried?: { epoch: number; ids: string[] };
  /** The next boundary's hand-out: why it has not happened yet; counted once done or skipped */
  handout?: { epoch: number; why: string; counted: boolean };
  /** Per runner: a streak of runs that failed at start (exit 78, or within seconds): how many starts
   *  the master sent in it, the last one's time, and why (the starts back off: rules.ts) */
  startBackoff?: Record<number, StartStreak>;
}

export interface StartStreak {
  count: number;
  lastMs: number;
  why: string;
}

/** One thing to do, with why, and the rule that planned it (rules.ts; absent on actions made elsewhere). */
export type Action = ActionBody & { rule?: string };

type ActionBody =
  | { kind: "demote"; id: number; reason: string; leaderIds: number[] }
  | {
      kind: "promote";
      id: number;
      reason: string;
      purpose: "sign" | "boundary";
      /** boundary hand-out: freeze at this time unless stripped first */
      leaseAtMs?: number;
      /** The switch stays armed even when the POST fails (cluster mode: a POST whose answer was lost
       *  may have given the key, and only the switch would stop it if the daemon died now) */
      switchStays?: boolean;
      /** Not attempted if the tick's fences were verified only after this time: a window opened
       *  while a runner being fenced could still sign in it */
      fencedByMs?: number;
    }
  | { kind: "freeze"; id: number; reason: string; cause: "boot" | "fence" }
  | { kind: "thaw"; id: number; reason: string }
  | { kind: "kill"; id: number; reason: string; pid: number }
  /** Cancel a boundary dead-man switch on a runner that now signs */
  | { kind: "disarm"; id: number; reason: string }
  /** SIGKILL (stop would thaw a frozen holder first), then stop so Restart=always does not bring it back */
  | { kind: "retire"; id: number; reason: string }
  | { kind: "start"; id: number; reason: string }
  | { kind: "stop"; id: number; reason: string }
  | { kind: "restart"; id: number; reason: string }
  | { kind: "reportTip"; height: number; reason: string };

/** Fences run first (in parallel); the promotion only if every fence was verified; the rest after. */
export interface Plan {
  /** How each runner in scope boots if (re)started now (the runner wrapper reads it through the
   *  daemon's boot permits) */
  bootModes?: Record<number, "key" | "passive">;
  /** Runners whose unit fails at start: why, and how long the next start waits (absent: none) */
  startBackoff?: Record<number, { why: string; waitMs: number }>;
  /** The boundary hand-out settled this tick: done, or skipped (and why) */
  handout?: { epoch: number; result: "done" | "skipped"; reason: string };
  fences: Action[];
  promote: (Action & { kind: "promote" }) | null;
  other: Action[];
  /** When the loop must wake next at the latest (ms since epoch) */
  wakeAtMs: number;
  /** The operator's switchover (asked, or implied by a hold on the signer) as decided this tick */
  switchover?: { kind: "move" | "wait" | "refuse" | "release"; why: string };
  notes: string[];
}

export interface Outcome {
  action: Action;
  ok: boolean;
  detail: string;
  /** A failure that is expected and retried (e.g. the enclave is busy computing): logged as a warning */
  transient?: boolean;
  /** For promote: the enclave id the node returned */
  leaderId?: number;
}
