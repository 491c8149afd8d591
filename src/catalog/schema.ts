// The catalog's SQLite schema (documented in format-spec/13-catalog.md, non-normative). A catalog
// with another schema version is rebuilt, never migrated in place: it is only a cache.

export const SCHEMA_VERSION = 2;

export const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

-- One row per chain of snapshots that follow each other (same host and paths, as backup picks parents):
-- file versions are diffed along a chain, so an unchanged version keeps one open range.
CREATE TABLE chains (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  head INTEGER NOT NULL
);

-- seq numbers are never reused (meta.next_seq), so ranges over them stay valid when snapshots go.
CREATE TABLE snapshots (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  chain INTEGER NOT NULL,
  time INTEGER NOT NULL,
  host TEXT NOT NULL,
  tags TEXT NOT NULL,
  paths TEXT NOT NULL,
  tree TEXT NOT NULL
);
CREATE INDEX snapshots_chain ON snapshots (chain, seq);

-- Interned paths: parent 0 is the root. name is TEXT when valid UTF-8, else BLOB (raw bytes).
CREATE TABLE paths (
  id INTEGER PRIMARY KEY,
  parent INTEGER NOT NULL,
  name NOT NULL,
  UNIQUE (parent, name)
);

CREATE TABLE owners (
  id INTEGER PRIMARY KEY,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL,
  user TEXT NOT NULL,
  grp TEXT NOT NULL,
  UNIQUE (uid, gid, user, grp)
);

-- A distinct version of a path. vkey is a 64-bit hash of every other column, for the dedup lookup.
-- content: 16 bytes identifying the contents (file: hash of the content ID list; dir: subtree ID
-- prefix; symlink: hash of the target; device: hash of rdev); empty for other types.
CREATE TABLE versions (
  id INTEGER PRIMARY KEY,
  path INTEGER NOT NULL,
  vkey INTEGER NOT NULL,
  type INTEGER NOT NULL,
  content BLOB NOT NULL,
  size INTEGER NOT NULL,
  mtime INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  owner INTEGER NOT NULL,
  UNIQUE (path, vkey)
);

-- The version is held by every snapshot of the chain with first <= seq <= last; last NULL means
-- "still held by the chain's head" (open).
CREATE TABLE ranges (
  version INTEGER NOT NULL,
  chain INTEGER NOT NULL,
  first INTEGER NOT NULL,
  last INTEGER,
  PRIMARY KEY (version, chain, first)
) WITHOUT ROWID;
`;
