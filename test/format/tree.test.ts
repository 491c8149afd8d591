// Tree blobs (format-spec ch. 7): deterministic encoding, raw-byte names, strict decoding.
import { describe, expect, it } from 'vitest';
import { decodeTree, encodeTree, sameNode } from '../../src/format/tree.js';
import type { TreeNode } from '../../src/model/tree.js';

const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);

function base(name: Buffer | string, extra: Partial<TreeNode> = {}): TreeNode {
  return {
    name: typeof name === 'string' ? Buffer.from(name) : name,
    type: 'file', mode: 0o644, uid: 1000, gid: 1000, mtimeNs: 1763919233123456789n, ctimeNs: 1763919233123456789n,
    inode: 393219n, device: 2049n, size: 5, nlink: 1, content: [ID_A], ...extra,
  };
}

function nodes(): TreeNode[] {
  return [
    base('b'), base('B'), base('a'), base('é'), base(Buffer.from([0xff])), base('aa'), base('a.b'),
    base('dir', { type: 'dir', size: undefined, nlink: undefined, content: undefined, subtree: ID_B }),
    base('ln', { type: 'symlink', size: undefined, nlink: undefined, content: undefined, target: Buffer.from('a') }),
    base('x', { xattrs: [{ name: 'user.z', value: Buffer.from('1') }, { name: 'user.a', value: Buffer.from([0, 1]) }] }),
  ].map((n) => {
    for (const k of Object.keys(n) as (keyof TreeNode)[]) if (n[k] === undefined) delete n[k];
    return n;
  });
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** A valid node as JSON, to be broken one field at a time. */
const goodJson = (): Record<string, unknown> => ({
  name: 'f', type: 'file', mode: 420, uid: 1, gid: 1, mtime: '1', ctime: '1', size: 0, inode: '1', device: '1', nlink: 1, content: [],
});
const treeOf = (...ns: unknown[]) => Buffer.from(JSON.stringify({ nodes: ns }));

describe('encodeTree', () => {
  it('gives the same bytes for the same nodes in any input order, sorted by raw name bytes', () => {
    const ref = encodeTree({ nodes: nodes() });
    for (let seed = 1; seed <= 20; seed++) expect(encodeTree({ nodes: shuffled(nodes(), seed) }).equals(ref)).toBe(true);
    const names = decodeTree(ref).nodes.map((n) => n.name);
    for (let i = 1; i < names.length; i++) expect(Buffer.compare(names[i - 1]!, names[i]!)).toBe(-1);
    expect(names[0]!.toString()).toBe('B'); // bytewise, not locale order
    expect(names[names.length - 1]!.equals(Buffer.from([0xff]))).toBe(true);
  });

  it('sorts xattrs by name and writes no whitespace', () => {
    const text = encodeTree({ nodes: nodes() }).toString('utf8');
    expect(text).toContain('"xattrs":[{"name":"user.a","value":"AAE="},{"name":"user.z","value":"MQ=="}]');
    expect(JSON.stringify(JSON.parse(text))).toBe(text);
  });

  it('reproduces the example of ch. 7.3 byte for byte', () => {
    const content = '4c0d' + '0'.repeat(60);
    const tree = {
      nodes: [
        { name: Buffer.from('link'), type: 'symlink' as const, mode: 0o777, uid: 1000, gid: 1000, user: 'ann', group: 'ann', mtimeNs: 1763919240000000000n, ctimeNs: 1763919240000000000n, inode: 393220n, device: 2049n, target: Buffer.from('hello.txt') },
        { name: Buffer.from('hello.txt'), type: 'file' as const, mode: 0o644, uid: 1000, gid: 1000, user: 'ann', group: 'ann', mtimeNs: 1763919233123456789n, ctimeNs: 1763919233123456789n, size: 5, inode: 393219n, device: 2049n, nlink: 1, content: [content] },
      ],
    };
    const expected =
      '{"nodes":[{"name":"hello.txt","type":"file","mode":420,"uid":1000,"gid":1000,"user":"ann","group":"ann","mtime":"1763919233123456789","ctime":"1763919233123456789","size":5,"inode":"393219","device":"2049","nlink":1,"content":["4c0d…"]},{"name":"link","type":"symlink","mode":511,"uid":1000,"gid":1000,"user":"ann","group":"ann","mtime":"1763919240000000000","ctime":"1763919240000000000","inode":"393220","device":"2049","target":"hello.txt"}]}';
    expect(encodeTree(tree).toString('utf8').replace(content, '4c0d…')).toBe(expected);
  });
});

/** A node as format-spec ch. 7.1 spells it, through JSON.stringify: the oracle for encodeTree. */
function specJson(n: TreeNode): string {
  const text = (b: Buffer) => (Buffer.from(b.toString('utf8'), 'utf8').equals(b) ? b.toString('utf8') : null);
  const o: Record<string, unknown> = {};
  const name = text(n.name);
  if (name !== null) o.name = name;
  else o.name_b64 = n.name.toString('base64');
  Object.assign(o, { type: n.type, mode: n.mode, uid: n.uid, gid: n.gid });
  if (n.user !== undefined) o.user = n.user;
  if (n.group !== undefined) o.group = n.group;
  Object.assign(o, { mtime: String(n.mtimeNs), ctime: String(n.ctimeNs) });
  if (n.size !== undefined) o.size = n.size;
  Object.assign(o, { inode: String(n.inode), device: String(n.device) });
  if (n.nlink !== undefined) o.nlink = n.nlink;
  if (n.rdev !== undefined) o.rdev = String(n.rdev);
  if (n.target !== undefined) {
    const t = text(n.target);
    if (t !== null) o.target = t;
    else o.target_b64 = n.target.toString('base64');
  }
  if (n.content !== undefined) o.content = n.content;
  if (n.subtree !== undefined) o.subtree = n.subtree;
  if (n.xattrs?.length) o.xattrs = [...n.xattrs].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name))).map((x) => ({ name: x.name, value: x.value.toString('base64') }));
  return JSON.stringify(o);
}

describe('encodeTree against JSON.stringify', () => {
  it('writes the bytes JSON.stringify writes for the same fields, for random names, owners and targets', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    // Bytes that exercise every path: plain ASCII, escapes, DEL, UTF-8 (BOM, U+2028), invalid UTF-8.
    const pieces = ['a', 'Z', '.', ' ', '"', '\\', '\n', '\x01', '\x7f', 'é', '日', '\u2028', '\ufeff', '😀'].map((t) => Buffer.from(t));
    pieces.push(Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]));
    const bytes = () => Buffer.concat(Array.from({ length: 1 + rnd(6) }, () => pieces[rnd(pieces.length)]!));
    const words = ['root', 'ann', 'o"brien', 'back\\slash', 'tab\t', 'josé', ''];
    for (let round = 0; round < 200; round++) {
      const ns: TreeNode[] = [];
      for (let i = 0; i < 1 + rnd(4); i++) {
        let name = bytes();
        if (name.includes(0x2f)) name = Buffer.from('x');
        const n = base(Buffer.concat([name, Buffer.from(String(i))]), { user: words[rnd(words.length)]!, group: words[rnd(words.length)]!, mode: rnd(0o7777), size: rnd(1 << 30) });
        if (rnd(3) === 0) Object.assign(n, { type: 'symlink', target: bytes() }, { size: undefined, nlink: undefined, content: undefined });
        if (rnd(4) === 0) delete n.user;
        if (rnd(5) === 0) n.xattrs = [{ name: 'user.ü', value: bytes() }];
        for (const k of Object.keys(n) as (keyof TreeNode)[]) if (n[k] === undefined) delete n[k];
        ns.push(n);
      }
      const expected = `{"nodes":[${[...ns].sort((a, b) => Buffer.compare(a.name, b.name)).map(specJson).join(',')}]}`;
      expect(encodeTree({ nodes: ns }).toString('utf8')).toBe(expected);
    }
  });
});

describe('names and targets', () => {
  const nonUtf8 = [
    Buffer.from([0xff]),
    Buffer.from([0x63, 0x61, 0x66, 0xe9]), // Latin-1 "café"
    Buffer.from([0xc3]), // truncated 2-byte sequence
    Buffer.from([0xc0, 0xaf]), // overlong "/"
    Buffer.from([0xed, 0xa0, 0x80]), // UTF-16 surrogate encoded in UTF-8
    Buffer.from([0x61, 0x80, 0x62]),
  ];

  it('non-UTF-8 names and link targets round-trip as name_b64 / target_b64', () => {
    for (const raw of nonUtf8) {
      const node = base(raw, { type: 'symlink', target: Buffer.concat([Buffer.from('../'), raw]) });
      delete node.size; delete node.nlink; delete node.content;
      const bytes = encodeTree({ nodes: [node] });
      const o = (JSON.parse(bytes.toString()) as { nodes: Record<string, unknown>[] }).nodes[0]!;
      expect(o.name).toBeUndefined();
      expect(o.name_b64).toBe(raw.toString('base64'));
      expect(o.target).toBeUndefined();
      expect(o.target_b64).toBe(node.target!.toString('base64'));
      const back = decodeTree(bytes).nodes[0]!;
      expect(back.name.equals(raw)).toBe(true);
      expect(back.target!.equals(node.target!)).toBe(true);
      expect(encodeTree(decodeTree(bytes)).equals(bytes)).toBe(true);
    }
  });

  it('valid UTF-8 names, including non-ASCII and characters JSON escapes, stay text', () => {
    for (const s of ['日本語', 'émoji 😀', 'quote"back\\slash', 'tab\there', 'nl\nx', '\u2028', '\ufeffbom', '\ufeffbom"quoted', 'del\x7f']) {
      const bytes = encodeTree({ nodes: [base(s)] });
      const o = (JSON.parse(bytes.toString()) as { nodes: Record<string, unknown>[] }).nodes[0]!;
      expect(o.name).toBe(s);
      expect(o.name_b64).toBeUndefined();
      expect(decodeTree(bytes).nodes[0]!.name.equals(Buffer.from(s))).toBe(true);
    }
  });

  it('decode rejects names that are empty, ".", "..", or contain "/", in either form', () => {
    for (const bad of ['', '.', '..', '/', 'a/b', 'a/', '/a']) {
      expect(() => decodeTree(treeOf({ ...goodJson(), name: bad }))).toThrow(/invalid node name/);
      const b64: Record<string, unknown> = { ...goodJson(), name_b64: Buffer.from(bad).toString('base64') };
      delete b64.name;
      expect(() => decodeTree(treeOf(b64))).toThrow(/invalid node name/);
    }
    expect(decodeTree(treeOf({ ...goodJson(), name: '...' })).nodes[0]!.name.toString()).toBe('...');
  });
});

describe('decodeTree rejects malformed trees', () => {
  it('accepts the reference node (so the rejections below are about the one change)', () => {
    expect(decodeTree(treeOf(goodJson())).nodes).toHaveLength(1);
  });

  it('missing required fields', () => {
    for (const field of ['name', 'type', 'mode', 'uid', 'gid', 'mtime', 'ctime', 'inode', 'device']) {
      const n = goodJson();
      delete n[field];
      expect(() => decodeTree(treeOf(n)), field).toThrow();
    }
    const file = goodJson();
    delete file.content;
    expect(() => decodeTree(treeOf(file))).toThrow(/file node/);
    const sized = goodJson();
    delete sized.size;
    expect(() => decodeTree(treeOf(sized))).toThrow(/file node/);
    const dir: Record<string, unknown> = { ...goodJson(), type: 'dir' };
    delete dir.content; delete dir.size;
    expect(() => decodeTree(treeOf(dir))).toThrow(/dir node/);
    expect(decodeTree(treeOf({ ...dir, subtree: ID_B })).nodes[0]!.subtree).toBe(ID_B);
    const link: Record<string, unknown> = { ...goodJson(), type: 'symlink' };
    delete link.content; delete link.size;
    expect(() => decodeTree(treeOf(link))).toThrow(/symlink node/);
  });

  it('wrong types and values', () => {
    const cases: Record<string, unknown>[] = [
      { type: 'door' },
      { mode: '420' },
      { uid: -1 },
      { gid: 1.5 },
      { mtime: 1 },
      { ctime: '-1' },
      { inode: '0x10' },
      { size: '5' },
      { content: ['abc'] },
      { content: 'a'.repeat(64) },
      { subtree: 'zz' },
      { xattrs: [{ name: 'user.x' }] },
    ];
    for (const c of cases) expect(() => decodeTree(treeOf({ ...goodJson(), ...c })), JSON.stringify(c)).toThrow();
    expect(() => decodeTree(Buffer.from('{"nodes":{}}'))).toThrow(/nodes/);
    expect(() => decodeTree(Buffer.from('{}'))).toThrow(/nodes/);
    expect(() => decodeTree(Buffer.from('{"nodes":[null]}'))).toThrow();
    expect(() => decodeTree(Buffer.from('{"nodes":['))).toThrow();
  });
});

describe('sameNode (reusing a parent tree ID without encoding)', () => {
  const changes: [string, Partial<TreeNode>][] = [
    ['name', { name: Buffer.from('other') }], ['type', { type: 'fifo' }], ['mode', { mode: 0o600 }], ['uid', { uid: 0 }],
    ['gid', { gid: 0 }], ['user', { user: 'root' }], ['group', { group: 'wheel' }], ['mtime', { mtimeNs: 1n }],
    ['ctime', { ctimeNs: 1n }], ['size', { size: 6 }], ['inode', { inode: 1n }], ['device', { device: 1n }],
    ['nlink', { nlink: 2 }], ['rdev', { rdev: 5n }], ['content', { content: [ID_B] }], ['content length', { content: [ID_A, ID_A] }],
    ['subtree', { subtree: ID_B }], ['target', { target: Buffer.from('b') }],
    ['xattr value', { xattrs: [{ name: 'user.z', value: Buffer.from('2') }, { name: 'user.a', value: Buffer.from([0, 1]) }] }],
    ['xattr removed', { xattrs: [{ name: 'user.z', value: Buffer.from('1') }] }],
  ];
  const x = nodes().find((n) => n.name.toString() === 'x')!;

  it('is true for a decoded copy, which encodes to the same bytes', () => {
    for (const n of nodes()) {
      const copy = decodeTree(encodeTree({ nodes: [n] })).nodes[0]!;
      expect(sameNode(n, copy), n.name.toString('hex')).toBe(true);
      expect(encodeTree({ nodes: [copy] })).toEqual(encodeTree({ nodes: [n] }));
    }
  });

  it('is false whenever an encoded field differs', () => {
    for (const [what, change] of changes) {
      const other = { ...x, ...change };
      expect(encodeTree({ nodes: [other] }).equals(encodeTree({ nodes: [x] })), what).toBe(false);
      expect(sameNode(x, other), what).toBe(false);
      expect(sameNode(other, x), what).toBe(false);
    }
  });

  it('treats no xattrs and an empty list alike, as the encoding does', () => {
    const a = base('f');
    const b = base('f', { xattrs: [] });
    expect(encodeTree({ nodes: [a] })).toEqual(encodeTree({ nodes: [b] }));
    expect(sameNode(a, b)).toBe(true);
  });
});
