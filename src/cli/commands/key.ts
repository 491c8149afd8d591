import { addKey, listKeys, resolveKeyName } from '../../repository/keys.js';
import { UsageError } from '../../errors.js';
import { getNewPassword } from '../password.js';
import { handle, type Register } from '../command.js';
import { table } from '../output.js';

interface KeyArgs {
  id?: string;
  newPasswordFile?: string;
  kdfN?: number;
}

async function newPassword(a: KeyArgs): Promise<string> {
  const pw = await getNewPassword(a.newPasswordFile);
  if (!pw) throw new UsageError('an empty password is not allowed');
  return pw;
}

export const registerKey: Register = (y) =>
  y.command('key', 'manage the passwords (key files) of a repository', (c) =>
    c
      .option('new-password-file', { type: 'string', describe: 'read the new password from a file (add, passwd)' })
      .option('kdf-n', { type: 'number', hidden: true })
      .command('list', 'list key files', {}, handle<KeyArgs>(async (ctx) => {
        const repo = await ctx.repository({ index: false, readOnly: true });
        const keys = await listKeys(repo.backend);
        ctx.out.data(keys.map((k) => ({ id: k.name, current: k.name === repo.keyName, created: k.created, hostname: k.hostname, username: k.username, kdf: k.kdf.algorithm })));
        const rows = keys.map((k) => [(k.name === repo.keyName ? '*' : ' ') + k.name.slice(0, 8), k.username, k.hostname, k.created]);
        for (const l of table(rows, [' ID', 'User', 'Host', 'Created'])) ctx.out.line(l);
        return 0;
      }))
      .command('add', 'add a password', {}, handle<KeyArgs>(async (ctx, a) => {
        const repo = await ctx.repository({ index: false });
        const name = await addKey(repo.backend, repo.keys, await newPassword(a), a.kdfN);
        ctx.out.info(`added key ${name.slice(0, 8)}`);
        ctx.out.data({ message_type: 'key_added', id: name });
        return 0;
      }))
      .command('remove <id>', 'remove a password (not the one in use)', (cc) => cc.positional('id', { type: 'string', demandOption: true }), handle<KeyArgs>(async (ctx, a) => {
        const repo = await ctx.repository({ index: false });
        const name = await resolveKeyName(repo.backend, a.id!);
        if (name === repo.keyName) throw new UsageError('refusing to remove the key in use; open the repository with another password first');
        await repo.backend.remove({ type: 'key', name });
        ctx.out.info(`removed key ${name.slice(0, 8)}`);
        ctx.out.data({ message_type: 'key_removed', id: name });
        return 0;
      }))
      .command('passwd', 'change the password in use', {}, handle<KeyArgs>(async (ctx, a) => {
        const repo = await ctx.repository({ index: false });
        // New key first, old key second: a crash between leaves both passwords working.
        const name = await addKey(repo.backend, repo.keys, await newPassword(a), a.kdfN);
        await repo.backend.remove({ type: 'key', name: repo.keyName });
        ctx.out.info(`password changed (key ${name.slice(0, 8)} replaces ${repo.keyName.slice(0, 8)})`);
        ctx.out.data({ message_type: 'key_changed', id: name, removed: repo.keyName });
        return 0;
      }))
      .demandCommand(1, 'name a key command: list, add, remove, passwd'),
  );
