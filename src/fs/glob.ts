// Exclude/include patterns, as restic users write them: `*` and `?` stay within one path
// component, `**` spans components, `[...]` is a class. A pattern without `/` matches a name at any
// depth; one with `/` matches a whole path (anchored at / when it starts with /, else any suffix).
import { lstatSync, readdirSync } from 'node:fs';
import { UsageError } from '../errors.js';

export class PathMatcher {
  private readonly res: RegExp[];
  /** Letters of `ignoreCasePatterns` match either case (restic's --iexclude, --iinclude). */
  constructor(patterns: readonly string[], ignoreCasePatterns: readonly string[] = []) {
    this.res = [...patterns.map((p) => compile(p, false)), ...ignoreCasePatterns.map((p) => compile(p, true))];
  }

  /** `path` is absolute ("/a/b/c"). True when any pattern matches it. */
  matches(path: string): boolean {
    for (const re of this.res) if (re.test(path)) return true;
    return false;
  }

  get empty(): boolean {
    return this.res.length === 0;
  }
}

function compile(pattern: string, ignoreCase: boolean): RegExp {
  if (pattern.length === 0) throw new UsageError('empty pattern');
  let p = pattern.endsWith('/') && pattern.length > 1 ? pattern.slice(0, -1) : pattern;
  let prefix: string;
  if (p.startsWith('/')) prefix = '^/';
  else prefix = '(?:^|/)';
  if (p.startsWith('/')) p = p.slice(1);
  // A match on a directory also covers everything under it.
  return regExp(prefix + translate(p, pattern) + '(?:/.*)?$', pattern, ignoreCase);
}

/** The regular expression source of a pattern's wildcards (`pattern` is for messages). */
function translate(p: string, pattern: string): string {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        // "**/" matches zero or more whole components; a bare "**" matches anything.
        if (p[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) throw new UsageError(`invalid pattern "${pattern}": unclosed [`);
      let cls = p.slice(i + 1, end);
      if (cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += '[' + cls.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else if (c === '\\' && i + 1 < p.length) {
      re += escape(p[++i]!);
    } else re += escape(c);
  }
  return re;
}

function regExp(source: string, pattern: string, ignoreCase: boolean): RegExp {
  try {
    return new RegExp(source, ignoreCase ? 'si' : 's');
  } catch {
    throw new UsageError(`invalid pattern "${pattern}"`);
  }
}

function escape(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? '\\' + c : c;
}

const WILDCARD = /[*?[\\]/;

/**
 * The paths a shell-style pattern names, as restic's --files-from expands each line (Go's
 * filepath.Glob): `*`, `?` and `[...]` match within one component, `\` escapes, names beginning
 * with a dot are not special. Sorted within each directory; a pattern without wildcards names
 * itself when it exists. A directory that cannot be read matches nothing.
 */
export function expandGlob(pattern: string): string[] {
  if (!WILDCARD.test(pattern)) return exists(pattern) ? [pattern] : [];
  let found = [pattern.startsWith('/') ? '/' : ''];
  const parts = pattern.split('/').filter((c) => c.length > 0);
  for (const [i, part] of parts.entries()) {
    const last = i === parts.length - 1;
    const next: string[] = [];
    if (!WILDCARD.test(part)) {
      for (const dir of found) next.push(childPath(dir, part));
    } else {
      const re = regExp('^' + translate(part, pattern) + '$', pattern, false);
      for (const dir of found) {
        let names: string[];
        try {
          names = readdirSync(dir || '.');
        } catch {
          continue;
        }
        for (const name of names.sort()) if (re.test(name)) next.push(childPath(dir, name));
      }
    }
    // Components between wildcards are checked as they are reached; the last one at the end.
    found = last ? next.filter(exists) : next;
  }
  return found;
}

function childPath(dir: string, name: string): string {
  return dir === '' ? name : dir === '/' ? '/' + name : dir + '/' + name;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
