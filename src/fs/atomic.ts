// Whole-file replacement for the local state files (thaw state, directory cache): a crash leaves
// the old file or the new one, never half of either.
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mkdirsSync } from './mkdirs.js';

/** Writes `data` to `file` through a temporary file (fsync, rename), mode 0600, creating its directory. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  mkdirsSync(dirname(file), 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
