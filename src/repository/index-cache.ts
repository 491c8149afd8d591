// The index cache (format-spec ch. 17): the master index in one local binary file, authenticated
// with a key derived from the master key, so loading it skips decrypting and parsing every index
// object. It is only ever a shortcut: whatever is wrong with the file, snap loads the index
// objects instead.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { endianness } from 'node:os';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../fs/atomic.js';
import type { IndexColumns } from './index.js';

const MAGIC = Buffer.from('snapidxc');
const VERSION = 2;
const HEADER = 28;
const MARK = 32;
const NAME_ENTRY = 33;
const PACK_ENTRY = 41;
/** Bytes per blob over all columns: ID, pack number, offset, stored and raw length, flags. */
const BLOB_BYTES = 32 + 4 + 8 + 4 + 4 + 1;
const MAC = 32;

/** The typed arrays are copied as they are in memory, which is the file's byte order only here. */
export const indexCacheUsable = endianness() === 'LE';

export function indexCacheKey(encryptKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', encryptKey, Buffer.alloc(0), 'snap index cache v1', 32));
}

export function encodeIndexCache(c: IndexColumns, key: Uint8Array): Buffer {
  const k = c.names.size;
  const p = c.packs.length;
  const n = c.packOf.length;
  const marks = [...new Set(c.repairMarks)].sort();
  const out = Buffer.allocUnsafe(HEADER + MARK * marks.length + NAME_ENTRY * k + PACK_ENTRY * p + BLOB_BYTES * n + MAC);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(VERSION, 8);
  out.writeUInt32LE(k, 12);
  out.writeUInt32LE(p, 16);
  out.writeUInt32LE(n, 20);
  out.writeUInt32LE(marks.length, 24);
  let at = HEADER;
  for (const mark of marks) at += out.write(mark, at, 'hex');
  for (const [name, inUse] of c.names) {
    out.write(name, at, 'hex');
    out[at + 32] = inUse ? 1 : 0;
    at += NAME_ENTRY;
  }
  for (const pack of c.packs) {
    out.write(pack.id, at, 'hex');
    out[at + 32] = pack.type === 'data' ? 0 : 1;
    out.writeBigUInt64LE(BigInt(pack.size), at + 33);
    at += PACK_ENTRY;
  }
  for (const column of [c.ids, c.packOf, c.offsets, c.lengths, c.rawLengths, c.flags]) {
    out.set(new Uint8Array(column.buffer, column.byteOffset, column.byteLength), at);
    at += column.byteLength;
  }
  createHmac('sha256', key).update(out.subarray(0, at)).digest().copy(out, at);
  return out;
}

/** The columns in `bytes`, or undefined when they are not a cache file made under `key`. */
export function decodeIndexCache(bytes: Buffer, key: Uint8Array): IndexColumns | undefined {
  if (bytes.length < HEADER + MAC || !bytes.subarray(0, 8).equals(MAGIC) || bytes.readUInt32LE(8) !== VERSION) return undefined;
  const k = bytes.readUInt32LE(12);
  const p = bytes.readUInt32LE(16);
  const n = bytes.readUInt32LE(20);
  const r = bytes.readUInt32LE(24);
  const end = HEADER + MARK * r + NAME_ENTRY * k + PACK_ENTRY * p + BLOB_BYTES * n;
  if (bytes.length !== end + MAC) return undefined;
  const mac = createHmac('sha256', key).update(bytes.subarray(0, end)).digest();
  if (!timingSafeEqual(mac, bytes.subarray(end))) return undefined;

  let at = HEADER;
  const repairMarks: string[] = [];
  for (let i = 0; i < r; i++, at += MARK) repairMarks.push(bytes.toString('hex', at, at + MARK));
  const names = new Map<string, boolean>();
  for (let i = 0; i < k; i++, at += NAME_ENTRY) names.set(bytes.toString('hex', at, at + 32), bytes[at + 32] === 1);
  const packs: IndexColumns['packs'] = [];
  for (let i = 0; i < p; i++, at += PACK_ENTRY) {
    packs.push({ id: bytes.toString('hex', at, at + 32), type: bytes[at + 32] === 0 ? 'data' : 'meta', size: Number(bytes.readBigUInt64LE(at + 33)) });
  }
  // Copies, not views: typed arrays need aligned offsets, and the file's buffer can go.
  const column = <T extends Int32Array | Uint32Array | Float64Array | Uint8Array>(a: T): T => {
    new Uint8Array(a.buffer).set(bytes.subarray(at, at + a.byteLength));
    at += a.byteLength;
    return a;
  };
  const c: IndexColumns = {
    names,
    repairMarks,
    packs,
    ids: column(new Int32Array(n * 8)),
    packOf: column(new Uint32Array(n)),
    offsets: column(new Float64Array(n)),
    lengths: column(new Uint32Array(n)),
    rawLengths: column(new Uint32Array(n)),
    flags: column(new Uint8Array(n)),
  };
  for (const pi of c.packOf) if (pi >= p) return undefined;
  return c;
}

/** The cache file's columns, or undefined when it is missing or not usable. */
export async function readIndexCache(file: string, key: Uint8Array): Promise<IndexColumns | undefined> {
  if (!indexCacheUsable) return undefined;
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    return undefined;
  }
  return decodeIndexCache(bytes, key);
}

export async function writeIndexCache(file: string, c: IndexColumns, key: Uint8Array): Promise<void> {
  if (indexCacheUsable) await writeFileAtomic(file, encodeIndexCache(c, key));
}
