// What etcd's v3 JSON gateway sends (grpc-gateway's protobuf JSON, as seen from etcd 3.4.23):
// int64 fields are decimal strings, bytes are base64, and fields at their zero value are left out
// (`succeeded: false`, `TTL: 0`, `count: 0`, a key's `lease: 0` are all simply absent). So every
// field that can be zero has a default here, and nothing the program reads is taken unvalidated.

import { z } from "zod";
import type { KeyValue } from "./etcd.ts";

const DECIMAL = /^-?\d+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** int64 as a decimal string (lease ids exceed 2^53 and must stay exact). */
export const Int64String = z.union([z.string().regex(DECIMAL), z.int()]).transform(String);
/** int64 that is small enough to be a number (revisions, TTLs, counts). */
export const Int64Number = z.union([z.string().regex(DECIMAL), z.int()]).transform(Number).pipe(z.number().refine(Number.isSafeInteger, "beyond 2^53"));

const utf8 = new TextDecoder("utf-8", { fatal: false });
export const Base64Text = z
  .string()
  .regex(BASE64, "not base64")
  .transform((s) => utf8.decode(Buffer.from(s, "base64")));

export function encodeBase64(text: string | Uint8Array): string {
  return Buffer.from(typeof text === "string" ? new TextEncoder().encode(text) : text).toString("base64");
}

export const HeaderSchema = z.object({ revision: Int64Number.default(0) }).prefault({});

export const KeyValueSchema = z
  .object({
    key: Base64Text,
    value: Base64Text.default(""),
    create_revision: Int64Number.default(0),
    mod_revision: Int64Number.default(0),
    version: Int64Number.default(0),
    lease: Int64String.default("0"),
  })
  .transform(
    (kv): KeyValue => ({
      key: kv.key,
      value: kv.value,
      createRevision: kv.create_revision,
      modRevision: kv.mod_revision,
      version: kv.version,
      lease: kv.lease,
    }),
  );

/** The body of a failed call: `{"error": "...", "message": "...", "code": 5}` */
export const GatewayErrorSchema = z.object({
  error: z.string().optional(),
  message: z.string().optional(),
  code: z.int().optional(),
});

export const LeaseGrantSchema = z.object({
  header: HeaderSchema,
  ID: Int64String,
  TTL: Int64Number.default(0),
  error: z.string().optional(),
});

/** Inside the stream's `{"result": ...}`; no TTL means the lease is gone. */
export const LeaseKeepAliveSchema = z.object({ header: HeaderSchema, ID: Int64String.optional(), TTL: Int64Number.default(0) });

export const LeaseRevokeSchema = z.object({ header: HeaderSchema });

export const LeaseTimeToLiveSchema = z.object({
  header: HeaderSchema,
  ID: Int64String,
  TTL: Int64Number.default(0),
  grantedTTL: Int64Number.default(0),
  keys: z.array(Base64Text).default([]),
});

export const RangeSchema = z.object({
  header: HeaderSchema,
  kvs: z.array(KeyValueSchema).default([]),
  count: Int64Number.default(0),
});

export const PutSchema = z.object({ header: HeaderSchema });

export const DeleteRangeSchema = z.object({ header: HeaderSchema, deleted: Int64Number.default(0) });

const OpResponseSchema = z.union([
  z.object({ response_put: PutSchema.partial() }),
  z.object({ response_range: RangeSchema.partial() }),
  z.object({ response_delete_range: DeleteRangeSchema.partial() }),
]);

export const TxnSchema = z.object({
  header: HeaderSchema,
  succeeded: z.boolean().default(false),
  responses: z.array(OpResponseSchema).default([]),
});

export const WatchEventSchema = z.object({ type: z.enum(["PUT", "DELETE"]).default("PUT"), kv: KeyValueSchema });

/** One line of the watch stream, inside `{"result": ...}` */
export const WatchResponseSchema = z.object({
  header: HeaderSchema,
  watch_id: Int64String.optional(),
  created: z.boolean().default(false),
  canceled: z.boolean().default(false),
  cancel_reason: z.string().optional(),
  compact_revision: Int64Number.default(0),
  events: z.array(WatchEventSchema).default([]),
});

/** `/v3/cluster/member/list`: a learner not started yet has no name and no client URLs. */
export const MemberListSchema = z.object({
  header: HeaderSchema,
  members: z
    .array(
      z.object({
        ID: Int64String,
        name: z.string().default(""),
        clientURLs: z.array(z.string()).default([]),
      }),
    )
    .default([]),
});

/** maintenance/status: the answering member's id (header) and its server version */
export const StatusSchema = z.object({
  header: z.object({ member_id: Int64String }),
  version: z.string().min(1).max(64),
});
