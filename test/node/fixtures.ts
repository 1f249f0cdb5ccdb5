// Loads the contract fixtures and serves them through a Transport, so the parser is tested on the
// exact bytes of the spec examples and the real captures.

import type { RawRequest, RawResponse, Transport } from "../../src/node/types.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

export const fixture = (name: string): Promise<string> => Bun.file(new URL(name, FIXTURES)).text();

export const json = (status: number, body: string): RawResponse => ({ status, body, contentType: "application/json" });
export const text = (status: number, body: string): RawResponse => ({ status, body, contentType: "text/plain" });

/** A transport answering `responses[METHOD path]` and recording every request. */
export function scriptedTransport(responses: Record<string, RawResponse>): Transport & { requests: RawRequest[] } {
  const requests: RawRequest[] = [];
  const transport = async (req: RawRequest) => {
    requests.push(req);
    const res = responses[`${req.method} ${req.path}`];
    if (!res) throw new Error(`no scripted response for ${req.method} ${req.path}`);
    return res;
  };
  return Object.assign(transport, { requests });
}
