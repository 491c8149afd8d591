// Exclude/include patterns, as restic users write them: `*` and `?` stay within one path
// component, `**` spans components, `[...]` is a class. A pattern without `/` matches a name at any
// depth; one with `/` matches a whole path (anchored at / when it starts with /, else any suffix).
import { UsageError } from '../errors.js';

export class PathMatcher {
  private readonly res: RegExp[];
  constructor(readonly patterns: readonly string[]) {
    this.res = patterns.map(compile);
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

function compile(pattern: string): RegExp {
  if (pattern.length === 0) throw new UsageError('empty pattern');
  let p = pattern.endsWith('/') && pattern.length > 1 ? pattern.slice(0, -1) : pattern;
  let prefix: string;
  if (p.startsWith('/')) prefix = '^';
  else prefix = '(?:^|/)';
  if (p.startsWith('/')) p = p.slice(1);
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
  // A match on a directory also covers everything under it.
  try {
    return new RegExp(prefix + re + '(?:/.*)?$', 's');
  } catch {
    throw new UsageError(`invalid pattern "${pattern}"`);
  }
}

function escape(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? '\\' + c : c;
}
