// Deterministic tree encoding (format-spec ch. 7.1): same directory -> same bytes -> same blob ID.
import { NODE_TYPES, type NodeType, type Tree, type TreeNode, type Xattr, compareNames } from '../model/tree.js';
import { isId } from '../model/ids.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

function textOrNull(b: Buffer): string | null {
  try {
    return utf8.decode(b);
  } catch {
    return null;
  }
}

/** Encodes with keys in spec order; nodes are sorted by raw name bytes. */
export function encodeTree(tree: Tree): Buffer {
  const nodes = [...tree.nodes].sort(compareNames);
  const parts = nodes.map(encodeNode);
  return Buffer.from(`{"nodes":[${parts.join(',')}]}`, 'utf8');
}

// Built as a string, field by field in spec order: through an object and JSON.stringify, a node
// cost ~1.3 KB of garbage (a dictionary-mode object of up to 18 properties), the largest
// allocation of a small-file backup's main thread. Strings that may need escaping go through
// JSON.stringify; numbers and decimal strings of bigints never do.
function encodeNode(n: TreeNode): string {
  const name = textOrNull(n.name);
  let s = name !== null ? `{"name":${JSON.stringify(name)}` : `{"name_b64":"${n.name.toString('base64')}"`;
  s += `,"type":"${n.type}","mode":${n.mode},"uid":${n.uid},"gid":${n.gid}`;
  if (n.user !== undefined) s += `,"user":${JSON.stringify(n.user)}`;
  if (n.group !== undefined) s += `,"group":${JSON.stringify(n.group)}`;
  s += `,"mtime":"${n.mtimeNs}","ctime":"${n.ctimeNs}"`;
  if (n.size !== undefined) s += `,"size":${n.size}`;
  s += `,"inode":"${n.inode}","device":"${n.device}"`;
  if (n.nlink !== undefined) s += `,"nlink":${n.nlink}`;
  if (n.rdev !== undefined) s += `,"rdev":"${n.rdev}"`;
  if (n.target !== undefined) {
    const t = textOrNull(n.target);
    s += t !== null ? `,"target":${JSON.stringify(t)}` : `,"target_b64":"${n.target.toString('base64')}"`;
  }
  if (n.content !== undefined) s += `,"content":${JSON.stringify(n.content)}`;
  if (n.subtree !== undefined) s += `,"subtree":${JSON.stringify(n.subtree)}`;
  if (n.xattrs !== undefined && n.xattrs.length > 0) {
    const xattrs = [...n.xattrs]
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
      .map((x) => ({ name: x.name, value: x.value.toString('base64') }));
    s += `,"xattrs":${JSON.stringify(xattrs)}`;
  }
  return s + '}';
}

/**
 * True when two nodes encode to the same bytes (every field encodeNode writes is equal), so a
 * directory whose nodes all match its parent snapshot's has the parent's tree ID without encoding
 * and hashing it again.
 */
export function sameNode(a: TreeNode, b: TreeNode): boolean {
  return (
    a.type === b.type && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.user === b.user &&
    a.group === b.group && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.size === b.size &&
    a.inode === b.inode && a.device === b.device && a.nlink === b.nlink && a.rdev === b.rdev &&
    a.subtree === b.subtree && a.name.equals(b.name) && sameBytes(a.target, b.target) &&
    sameList(a.content, b.content) && sameXattrs(a.xattrs ?? [], b.xattrs ?? [])
  );
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}

function sameList(a: string[] | undefined, b: string[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  return a.every((x, i) => x === b[i]);
}

function sameXattrs(a: Xattr[], b: Xattr[]): boolean {
  if (a.length !== b.length) return false;
  if (a.length === 0) return true;
  // Encoded sorted by name: listxattr order does not matter.
  const byName = (xs: Xattr[]) => new Map(xs.map((x) => [x.name, x.value]));
  const bm = byName(b);
  return byName(a).size === bm.size && a.every((x) => bm.get(x.name)?.equals(x.value) === true);
}

/** Parses a tree blob; throws Error with a reason on malformed input (callers name the blob). */
export function decodeTree(bytes: Uint8Array): Tree {
  const doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as { nodes?: unknown };
  if (!doc || !Array.isArray(doc.nodes)) throw new Error('tree has no nodes array');
  return { nodes: doc.nodes.map(decodeNode) };
}

function big(v: unknown, field: string): bigint {
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new Error(`bad ${field}`);
  return BigInt(v);
}

function int(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`bad ${field}`);
  return v;
}

function decodeNode(raw: unknown): TreeNode {
  const o = raw as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) throw new Error('node is not an object');
  let name: Buffer;
  if (typeof o.name === 'string') name = Buffer.from(o.name, 'utf8');
  else if (typeof o.name_b64 === 'string') name = Buffer.from(o.name_b64, 'base64');
  else throw new Error('node without a name');
  const dots = name.length <= 2 && name.every((c) => c === 0x2e); // "." or ".."
  if (name.length === 0 || dots || name.includes(0x2f)) {
    throw new Error(`invalid node name ${JSON.stringify(name.toString('utf8'))}`);
  }
  if (!NODE_TYPES.includes(o.type as NodeType)) throw new Error(`unknown node type ${String(o.type)}`);
  const n: TreeNode = {
    name,
    type: o.type as NodeType,
    mode: int(o.mode, 'mode') & 0o7777,
    uid: int(o.uid, 'uid'),
    gid: int(o.gid, 'gid'),
    mtimeNs: big(o.mtime, 'mtime'),
    ctimeNs: big(o.ctime, 'ctime'),
    inode: big(o.inode, 'inode'),
    device: big(o.device, 'device'),
  };
  if (typeof o.user === 'string') n.user = o.user;
  if (typeof o.group === 'string') n.group = o.group;
  if (o.size !== undefined) n.size = int(o.size, 'size');
  if (o.nlink !== undefined) n.nlink = int(o.nlink, 'nlink');
  if (o.rdev !== undefined) n.rdev = big(o.rdev, 'rdev');
  if (typeof o.target === 'string') n.target = Buffer.from(o.target, 'utf8');
  else if (typeof o.target_b64 === 'string') n.target = Buffer.from(o.target_b64, 'base64');
  if (o.content !== undefined) {
    if (!Array.isArray(o.content) || !o.content.every(isId)) throw new Error('bad content list');
    n.content = o.content as string[];
  }
  if (o.subtree !== undefined) {
    if (!isId(o.subtree)) throw new Error('bad subtree id');
    n.subtree = o.subtree;
  }
  if (Array.isArray(o.xattrs)) {
    n.xattrs = o.xattrs.map((x: { name?: unknown; value?: unknown }) => {
      if (typeof x?.name !== 'string' || typeof x.value !== 'string') throw new Error('bad xattr');
      return { name: x.name, value: Buffer.from(x.value, 'base64') };
    });
  }
  if (n.type === 'file' && (n.content === undefined || n.size === undefined)) throw new Error('file node without content or size');
  if (n.type === 'dir' && n.subtree === undefined) throw new Error('dir node without subtree');
  if (n.type === 'symlink' && n.target === undefined) throw new Error('symlink node without target');
  return n;
}

