import { describe, expect, it } from 'vitest';
import { NoSuchItemError, UsageError } from '../../src/errors.js';
import { matchIdPrefix } from '../../src/model/ids.js';

// Used by every command that takes a snapshot ID (from the repository and from the catalog alike),
// and by find --pack.
describe('matchIdPrefix', () => {
  const ids = ['abcd1234'.repeat(8), 'abce0000'.repeat(8), '0123ffff'.repeat(8)];

  it('takes a full ID or a unique prefix of at least 4 hex digits, in either case', () => {
    expect(matchIdPrefix(ids, ids[2]!, 'snapshot')).toBe(ids[2]);
    expect(matchIdPrefix(ids, 'ABCD', 'snapshot')).toBe(ids[0]);
    expect(matchIdPrefix(ids, '0123', 'snapshot')).toBe(ids[2]);
  });

  it('refuses an ambiguous prefix, an unknown one, and what is not one', () => {
    expect(() => matchIdPrefix(ids, 'abc', 'snapshot')).toThrow(UsageError); // too short
    expect(() => matchIdPrefix(ids, 'abcz', 'snapshot')).toThrow(UsageError);
    expect(() => matchIdPrefix(ids, 'abcd1234'.repeat(8) + '0', 'snapshot')).toThrow(UsageError); // too long
    expect(() => matchIdPrefix(ids, 'abc0', 'snapshot')).toThrow(NoSuchItemError);
    expect(() => matchIdPrefix([...ids, 'abcd5678'.repeat(8)], 'abcd', 'snapshot')).toThrow(/ambiguous \(2 matches\)/);
    expect(() => matchIdPrefix([], 'abcd', 'snapshot')).toThrow(/no snapshot with ID abcd/);
    expect(() => matchIdPrefix(ids, 'abcd'.repeat(8) + 'z', 'pack')).toThrow(/is not a pack ID \(hex digits, at least 4\)$/);
    expect(() => matchIdPrefix(ids, 'ffff', 'pack')).toThrow(/no pack with ID ffff/);
  });
});
