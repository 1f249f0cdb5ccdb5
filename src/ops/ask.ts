// The CLI's side of hold, release and switchover: one request to the daemon, its answer as text.
// With no daemon running nothing can be applied (a hold is the daemon's to keep): say so, exit 1.

import { askDaemon, type AskResult } from "../control/client.ts";
import { operatorResultSchema, type ControlRequest, type OperatorResult } from "../control/protocol.ts";
import { EXIT_FAILURE, UserError } from "../errors.ts";

export type Ask = (req: ControlRequest, timeoutMs?: number) => Promise<AskResult<OperatorResult>>;

export function socketAsk(path: string): Ask {
  return (req, timeoutMs) => askDaemon(path, req, operatorResultSchema, timeoutMs === undefined ? {} : { timeoutMs });
}

/** The daemon's answer, or a UserError (exit 1) saying why there is none. */
export function answerOf(a: AskResult<OperatorResult>, what: string): OperatorResult {
  switch (a.kind) {
    case "answer":
      return a.result;
    case "no-daemon":
      throw new UserError(`${what}: no daemon is running (${a.reason}); start it first (systemctl start jorm_master)`, EXIT_FAILURE);
    case "refused":
      throw new UserError(`${what}: the daemon refused: ${a.error}`, EXIT_FAILURE);
    case "failed":
      throw new UserError(`${what}: ${a.error}`, EXIT_FAILURE);
  }
}

/** A runner id on the command line: a whole number. */
export function runnerId(text: string | undefined, what: string): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new UserError(`${what}: a runner id (0, 1, …) is needed, got ${JSON.stringify(text ?? "")}`, 64);
  return Number(text);
}
