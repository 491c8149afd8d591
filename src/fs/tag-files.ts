// Directories marked by a file in them to be left out of backups (`--exclude-if-present`,
// `--exclude-caches`, as in restic): a tag is NAME, or NAME:HEADER when the file must also begin
// with HEADER.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { joinPath } from './metadata.js';

/** The tag of the Cache Directory Tagging Specification (https://bford.info/cachedir/). */
export const CACHEDIR_TAG = 'CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55';

const { O_NOFOLLOW, O_NONBLOCK, O_RDONLY } = constants;

interface Tag {
  name: Buffer;
  header: Buffer;
}

export class TagFiles {
  private readonly tags: Tag[];

  constructor(specs: readonly string[]) {
    this.tags = specs.map((spec) => {
      const colon = spec.indexOf(':');
      const name = colon < 0 ? spec : spec.slice(0, colon);
      if (name === '' || name.includes('/')) throw new UsageError(`--exclude-if-present: "${spec}" must be a file name, optionally followed by :HEADER`);
      return { name: Buffer.from(name), header: Buffer.from(colon < 0 ? '' : spec.slice(colon + 1)) };
    });
  }

  get empty(): boolean {
    return this.tags.length === 0;
  }

  /** Whether the directory `dir` holds one of the tag files (beginning with its header, if any). */
  marks(dir: Buffer): boolean {
    return this.tags.some((t) => (t.header.length === 0 ? exists(joinPath(dir, t.name)) : beginsWith(joinPath(dir, t.name), t.header)));
  }
}

function exists(path: Buffer): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** A regular file (never read through a symlink, never waited on as a FIFO) that begins with `header`. */
function beginsWith(path: Buffer, header: Buffer): boolean {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!fstatSync(fd).isFile()) return false;
    const head = Buffer.alloc(header.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(header);
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
