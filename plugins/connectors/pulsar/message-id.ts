/**
 * Pulsar message ids as OFFSET bounds. The text form is the Flink Pulsar connector's
 * `ledgerId:entryId:partition` (e.g. `12:2:-1`), optionally followed by `:batchIndex` to point inside a
 * batched entry (a form of Sluice's own; the Flink connector takes the three-part form only).
 */

export interface MessageIdParts {
  readonly ledgerId: bigint;
  readonly entryId: bigint;
  /** -1 on a non-partitioned topic. */
  readonly partition: number;
  /** -1 for a whole entry (a message that is not batched, or every message of a batch). */
  readonly batchIndex: number;
}

const INT64_MAX = (1n << 63n) - 1n;
const INT32_MAX = 2 ** 31 - 1;
const TEXT = /^(0|[1-9]\d*):(0|[1-9]\d*):(-1|0|[1-9]\d*)(?::(-1|0|[1-9]\d*))?$/;

/** The accepted text forms, for error messages. */
export const MESSAGE_ID_FORMAT =
  'a Pulsar message id "ledgerId:entryId:partition" or "ledgerId:entryId:partition:batchIndex" (e.g. "12:2:-1"; partition -1 on a non-partitioned topic)';

/** Parses the text form; undefined when it is not one (leading zeros, signs, spaces, out of range). */
export function parseMessageId(text: string): MessageIdParts | undefined {
  const m = TEXT.exec(text);
  if (!m) return undefined;
  const ledgerId = BigInt(m[1]!);
  const entryId = BigInt(m[2]!);
  const partition = Number(m[3]);
  const batchIndex = m[4] === undefined ? -1 : Number(m[4]);
  if (ledgerId > INT64_MAX || entryId > INT64_MAX || partition > INT32_MAX || batchIndex > INT32_MAX) return undefined;
  return { ledgerId, entryId, partition, batchIndex };
}

/** The canonical text form: three parts, or four when the id points inside a batch. */
export function formatMessageId(id: MessageIdParts): string {
  const base = `${id.ledgerId}:${id.entryId}:${id.partition}`;
  return id.batchIndex === -1 ? base : `${base}:${id.batchIndex}`;
}

/**
 * Orders two ids of the same partition (ledger, then entry, then batch index; a whole entry, -1,
 * sorts before its first batched message). The partition is not compared.
 */
export function compareMessageIds(a: MessageIdParts, b: MessageIdParts): number {
  if (a.ledgerId !== b.ledgerId) return a.ledgerId < b.ledgerId ? -1 : 1;
  if (a.entryId !== b.entryId) return a.entryId < b.entryId ? -1 : 1;
  return a.batchIndex === b.batchIndex ? 0 : a.batchIndex < b.batchIndex ? -1 : 1;
}

/**
 * The position just before the entry holding `id`: a reader started there, exclusively (a Pulsar
 * reader's start is exclusive), receives that entry first. Entry -1 is the position before the first
 * entry of a ledger, which the broker resolves to the next valid entry.
 */
export function entryBefore(id: MessageIdParts): MessageIdParts {
  return { ledgerId: id.ledgerId, entryId: id.entryId - 1n, partition: id.partition, batchIndex: -1 };
}

/** The first position after `id`, as an exclusive upper bound that ends a window right after it. */
export function positionAfter(id: MessageIdParts): MessageIdParts {
  return id.batchIndex >= 0 ? { ...id, batchIndex: id.batchIndex + 1 } : { ...id, entryId: id.entryId + 1n };
}

// --- The MessageIdData protobuf (PulsarApi.proto), the form MessageId.serialize/deserialize use ---
// ledgerId = 1 (uint64), entryId = 2 (uint64), partition = 3 (int32, default -1),
// batch_index = 4 (int32, default -1); other fields (ack_set, batch_size, chunks) are skipped.

function pushVarint(out: number[], value: bigint): void {
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

/** Encodes an id as a MessageIdData message, for MessageId.deserialize. */
export function encodeMessageIdData(id: MessageIdParts): Buffer {
  const out: number[] = [];
  out.push(0x08);
  pushVarint(out, id.ledgerId);
  out.push(0x10);
  pushVarint(out, id.entryId);
  if (id.partition !== -1) {
    out.push(0x18);
    pushVarint(out, BigInt(id.partition));
  }
  if (id.batchIndex !== -1) {
    out.push(0x20);
    pushVarint(out, BigInt(id.batchIndex));
  }
  return Buffer.from(out);
}

/** Decodes a MessageIdData message (MessageId.serialize's output). Throws on a truncated one. */
export function decodeMessageIdData(data: Uint8Array): MessageIdParts {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= data.length || shift > 63n) throw new Error('malformed MessageIdData: bad varint');
      const byte = data[pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
  };
  let ledgerId: bigint | undefined;
  let entryId: bigint | undefined;
  let partition = -1;
  let batchIndex = -1;
  while (pos < data.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) {
      const v = varint();
      if (field === 1) ledgerId = BigInt.asUintN(64, v);
      else if (field === 2) entryId = BigInt.asIntN(64, v);
      else if (field === 3) partition = Number(BigInt.asIntN(32, v));
      else if (field === 4) batchIndex = Number(BigInt.asIntN(32, v));
    } else if (wire === 1) pos += 8;
    else if (wire === 2) {
      const length = Number(varint());
      pos += length;
    } else if (wire === 5) pos += 4;
    else throw new Error(`malformed MessageIdData: wire type ${wire}`);
    if (pos > data.length) throw new Error('malformed MessageIdData: truncated');
  }
  if (ledgerId === undefined || entryId === undefined)
    throw new Error('malformed MessageIdData: no ledgerId or entryId');
  return { ledgerId, entryId, partition, batchIndex };
}
