import { configToJson } from '../../format/config.js';
import { readPackHeader } from '../../format/pack.js';
import { IntegrityError, UsageError } from '../../errors.js';
import { sha256Hex } from '../../crypto/hash.js';
import { handle, type Register } from '../command.js';

interface CatArgs {
  kind: string;
  id?: string;
}

const KINDS = ['config', 'index', 'snapshot', 'pack', 'blob', 'tree', 'key'];

export const registerCat: Register = (y) =>
  y.command(
    'cat <kind> [id]',
    'print a repository object, decrypted (debugging): config, index ID, snapshot ID, pack ID, blob ID, tree ID, key ID',
    (c) => c.positional('kind', { type: 'string', choices: KINDS, demandOption: true }).positional('id', { type: 'string' }),
    handle<CatArgs>(async (ctx, a) => {
      const repo = await ctx.repository({ index: a.kind === 'blob' || a.kind === 'tree' || a.kind === 'pack', readOnly: true });
      const write = (doc: unknown) => process.stdout.write(JSON.stringify(doc, null, ctx.args.json ? undefined : 2) + '\n');
      if (a.kind === 'config') {
        write(configToJson(repo.config));
        return 0;
      }
      if (!a.id) throw new UsageError(`snap cat ${a.kind} needs an ID`);
      const id = a.id.toLowerCase();
      switch (a.kind) {
        case 'index':
          write(await repo.loadMetadata('index', id));
          return 0;
        case 'snapshot':
          write((await repo.findSnapshot(id)).snapshot);
          return 0;
        case 'key':
          write(JSON.parse((await repo.backend.load({ type: 'key', name: id })).toString('utf8')));
          return 0;
        case 'pack': {
          const type = repo.index.pack(id)?.type ?? 'data';
          const bytes = await repo.backend.load({ type, name: id });
          const what = `${type}/${id.slice(0, 2)}/${id}`;
          if (sha256Hex(bytes) !== id) throw new IntegrityError(what, 'content does not match its name (corrupt or tampered)');
          let entries;
          try {
            entries = readPackHeader(repo.keys.encrypt, bytes);
          } catch (e) {
            throw new IntegrityError(what, (e as Error).message);
          }
          write({ id, type, size: bytes.length, blobs: entries });
          return 0;
        }
        case 'tree': {
          const data = await repo.loadBlob(id, 'tree');
          process.stdout.write(data.toString('utf8') + '\n');
          return 0;
        }
        case 'blob': {
          const loc = repo.index.get(id);
          const data = await repo.loadBlob(id, loc?.type ?? 'data');
          process.stdout.write(data);
          return 0;
        }
      }
      return 0;
    }),
  );
