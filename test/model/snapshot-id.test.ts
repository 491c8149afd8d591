import { describe, expect, it } from 'vitest';
import { NoSuchItemError, UsageError } from '../../src/errors.js';
import { matchSnapshotId } from '../../src/model/snapshot.js';

// Used by every command that takes a snapshot ID, from the repository and from the catalog alike.
describe('matchSnapshotId', () => {
  const ids = ['abcd1234'.repeat(8), 'abce0000'.repeat(8), '0123ffff'.repeat(8)];

  it('takes a full ID or a unique prefix of at least 4 hex digits, in either case', () => {
    expect(matchSnapshotId(ids, ids[2]!)).toBe(ids[2]);
    expect(matchSnapshotId(ids, 'ABCD')).toBe(ids[0]);
    expect(matchSnapshotId(ids, '0123')).toBe(ids[2]);
  });

  it('refuses an ambiguous prefix, an unknown one, and what is not one', () => {
    expect(() => matchSnapshotId(ids, 'abc')).toThrow(UsageError); // too short
    expect(() => matchSnapshotId(ids, 'abcz')).toThrow(UsageError);
    expect(() => matchSnapshotId(ids, 'abcd1234'.repeat(8) + '0')).toThrow(UsageError); // too long
    expect(() => matchSnapshotId(ids, 'abc0')).toThrow(NoSuchItemError);
    expect(() => matchSnapshotId([...ids, 'abcd5678'.repeat(8)], 'abcd')).toThrow(/ambiguous \(2 matches\)/);
    expect(() => matchSnapshotId([], 'abcd')).toThrow(/no snapshot with ID abcd/);
  });
});
