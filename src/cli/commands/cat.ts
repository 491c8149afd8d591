import { configToJson } from '../../format/config.js';
import { readPackHeader } from '../../format/pack.js';
import { IntegrityError, NoSuchItemError, UsageError } from '../../errors.js';
import { sha256Hex } from '../../crypto/hash.js';
import { isId } from '../../model/ids.js';
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
        case 'tree':
        case 'blob': {
          // An ID the user typed that the index lacks is not damage (loadBlob would say so).
          if (!isId(id)) throw new UsageError(`"${a.id}" is not a blob ID (64 hex digits)`);
          const type = repo.index.get(id)?.type;
          if (type === undefined) throw new NoSuchItemError(`no blob ${id} in this repository's index`);
          if (a.kind === 'tree' && type !== 'tree') throw new UsageError(`blob ${id} is a data blob, not a tree: use snap cat blob`);
          const data = await repo.loadBlob(id, type);
          process.stdout.write(a.kind === 'tree' ? data.toString('utf8') + '\n' : data);
          return 0;
        }
      }
      return 0;
    }),
  );
