// uid/gid -> names, read once from /etc/passwd and /etc/group (Node has no getpwuid).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

interface NameTable {
  /** The file's bytes (none when it cannot be read: names are informational, numbers are what restore uses). */
  bytes: Buffer;
  names: Map<number, string>;
}

const tables = new Map<string, NameTable>();

function table(file: string): NameTable {
  let t = tables.get(file);
  if (t) return t;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    bytes = Buffer.alloc(0);
  }
  const names = new Map<number, string>();
  for (const line of bytes.toString('utf8').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2]!) && !names.has(Number(f[2]))) names.set(Number(f[2]), f[0]!);
  }
  tables.set(file, (t = { bytes, names }));
  return t;
}

export function userName(uid: number): string | undefined {
  return table('/etc/passwd').names.get(uid);
}

export function groupName(gid: number): string | undefined {
  return table('/etc/group').names.get(gid);
}

/** Hex SHA-256 of the bytes the names come from (of nothing for an unreadable file). */
export function nameTableDigests(): { passwd: string; group: string } {
  const digest = (file: string) => createHash('sha256').update(table(file).bytes).digest('hex');
  return { passwd: digest('/etc/passwd'), group: digest('/etc/group') };
}
