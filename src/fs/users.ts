// uid/gid -> names, read once from /etc/passwd and /etc/group (Node has no getpwuid).
import { readFileSync } from 'node:fs';

let users: Map<number, string> | undefined;
let groups: Map<number, string> | undefined;

function parse(file: string): Map<number, string> {
  const m = new Map<number, string>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && /^\d+$/.test(f[2]!) && !m.has(Number(f[2]))) m.set(Number(f[2]), f[0]!);
    }
  } catch {
    // No such file: names are informational, numbers are what restore uses.
  }
  return m;
}

export function userName(uid: number): string | undefined {
  return (users ??= parse('/etc/passwd')).get(uid);
}

export function groupName(gid: number): string | undefined {
  return (groups ??= parse('/etc/group')).get(gid);
}
