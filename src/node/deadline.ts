// The HTTP transport's deadline for in-process transports: the simulator's "REST hang" fault is a
// promise that never settles, and the master must see it as a timeout in virtual time, exactly as
// it would see a hung node over HTTP in real time.

import type { Clock } from "../ports.ts";
import type { NodeError, RawRequest, RawResponse, Transport } from "./types.ts";

export function withDeadline(transport: Transport, clock: Clock, timeoutMs: number): Transport {
  return async (req: RawRequest): Promise<RawResponse | NodeError> => {
    const endpoint = `${req.method} ${req.path}`;
    const cancelSleep = new AbortController();
    const expired = clock.sleep(timeoutMs, cancelSleep.signal).then(
      (): NodeError => ({ kind: "unreachable", reason: "timeout", message: `${endpoint}: no answer within ${timeoutMs} ms` }),
    );
    const answered = Promise.resolve()
      .then(() => transport(req))
      .catch(
        (error: unknown): NodeError => ({
          kind: "unreachable",
          reason: "other",
          message: `${endpoint}: ${(error as Error)?.message ?? String(error)}`,
        }),
      );
    // Cancel the losing timer so a virtual clock does not keep it queued (Clock.sleep resolves
    // early on abort, but by then the race is decided).
    const winner = await Promise.race([answered, expired]);
    cancelSleep.abort();
    return winner;
  };
}
