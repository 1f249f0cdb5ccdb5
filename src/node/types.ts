// What the master needs from a Jormungandr node, normalised. Two implementations exist: the HTTP
// client (a real node, or the simulator served over HTTP) and the simulator in-process. The master
// cannot tell them apart, so every behaviour measured in virtual time holds over HTTP too.

export const NODE_STATES = [
  "StartingRestServer",
  "PreparingStorage",
  "PreparingBlock0",
  "Bootstrapping",
  "StartingWorkers",
  "Running",
] as const;
export type NodeState = (typeof NODE_STATES)[number];

export interface BlockDate {
  epoch: number;
  slot: number;
}

export interface NodeStats {
  state: NodeState;
  version: string;
  /** Present only when Running */
  height: number | null;
  lastBlockDate: BlockDate | null;
  lastBlockTimeMs: number | null;
  lastReceivedBlockTimeMs: number | null;
  /** Seconds since the workers started (not since process start) */
  uptimeS: number | null;
  nodeId: string | null;
}

export interface Settings {
  block0Hash: string;
  block0TimeMs: number;
  slotDurationMs: number;
  slotsPerEpoch: number;
  consensusVersion: string;
  currSlotStartTimeMs: number | null;
}

export type LeaderStatus =
  | { kind: "pending" }
  | { kind: "rejected"; reason: string }
  | { kind: "block"; block: string; parent: string | null; chainLength: number };

export interface LeaderLog {
  createdAtMs: number;
  scheduledAtMs: number;
  scheduledAt: BlockDate;
  wakeAtMs: number | null;
  finishedAtMs: number | null;
  status: LeaderStatus;
  enclaveLeaderId: number;
}

/** The JSON form of node_secret.yaml, as POST /leaders expects it. */
export type NodeSecret = Record<string, unknown>;

export type NodeError =
  /** 503 (v0.8.5–18) or 500 (v0.8.19) while bootstrapping: the node lives, it is not ready. */
  | { kind: "not_ready"; status: number; message: string }
  /** No answer within the deadline, refused, reset: state unknown. */
  | { kind: "unreachable"; reason: "timeout" | "refused" | "reset" | "other"; message: string }
  /** An HTTP error status that is not "not ready" (e.g. 404 on DELETE of an unknown id, 500). */
  | { kind: "http"; status: number; message: string }
  /** The body did not match the contract. */
  | { kind: "malformed"; endpoint: string; field: string; message: string };

export type NodeResult<T> = { ok: true; value: T } | { ok: false; error: NodeError };

export interface NodeApi {
  stats(): Promise<NodeResult<NodeStats>>;
  settings(): Promise<NodeResult<Settings>>;
  leaders(): Promise<NodeResult<number[]>>;
  addLeader(secret: NodeSecret): Promise<NodeResult<number>>;
  /** true when removed, false when the id was unknown (404) */
  removeLeader(id: number): Promise<NodeResult<boolean>>;
  leaderLogs(): Promise<NodeResult<LeaderLog[]>>;
  shutdown(): Promise<NodeResult<void>>;
  tip(): Promise<NodeResult<string>>;
}

export const ok = <T>(value: T): NodeResult<T> => ({ ok: true, value });
export const fail = <T = never>(error: NodeError): NodeResult<T> => ({ ok: false, error });

/** One REST exchange, stripped of the network: the HTTP client and the in-process simulator both
 *  produce these, and one parser turns them into NodeResults. */
export interface RawRequest {
  method: "GET" | "POST" | "DELETE";
  /** Path below /api/v0, e.g. "/node/stats", "/leaders/1" */
  path: string;
  /** JSON body for POST */
  body?: string;
  /** The answer's body is refused past this many bytes (HTTP transport; default DEFAULT_MAX_BODY_BYTES) */
  maxBodyBytes?: number;
}
export interface RawResponse {
  status: number;
  body: string;
  contentType: string;
}
/** Resolves with the response, or with a NodeError of kind "unreachable" (deadline, refused, reset). */
export type Transport = (req: RawRequest) => Promise<RawResponse | NodeError>;
