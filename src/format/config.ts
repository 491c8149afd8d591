// The config object (format-spec ch. 4).
import type { ChunkerParams } from '../chunker/params.js';
import { UnsupportedFormatError } from '../errors.js';

import { STORAGE_CLASSES, type StorageClass } from '../backend/backend.js';

export interface RepoConfig {
  version: 1;
  id: string;
  created: string;
  chunker: ChunkerParams;
  compressionLevel: number;
  dataPackTarget: number;
  metaPackTarget: number;
  dataStorageClass: StorageClass;
}

export function configToJson(c: RepoConfig): unknown {
  return {
    version: 1,
    id: c.id,
    created: c.created,
    chunker: {
      algorithm: 'fastcdc-2020',
      min: c.chunker.min,
      avg: c.chunker.avg,
      max: c.chunker.max,
      normalization: c.chunker.normalization,
      seed: c.chunker.seed.toString(16).padStart(16, '0'),
    },
    compression: { algorithm: 'zstd', level: c.compressionLevel },
    packs: { data_target: c.dataPackTarget, meta_target: c.metaPackTarget },
    storage_classes: { data: c.dataStorageClass },
  };
}

export function configFromJson(doc: Record<string, unknown>): RepoConfig {
  const ch = doc.chunker as Record<string, unknown> | undefined;
  const comp = doc.compression as Record<string, unknown> | undefined;
  const packs = doc.packs as Record<string, unknown> | undefined;
  const classes = (doc.storage_classes ?? {}) as Record<string, unknown>;
  if (doc.version !== 1) throw new UnsupportedFormatError(`config: repository format version ${String(doc.version)} is not supported (this snap knows 1)`);
  if (!ch || ch.algorithm !== 'fastcdc-2020' || typeof ch.seed !== 'string' || !/^[0-9a-f]{16}$/.test(ch.seed)) {
    throw new UnsupportedFormatError('config: unknown or malformed chunker settings');
  }
  if (!comp || comp.algorithm !== 'zstd') throw new UnsupportedFormatError('config: unknown compression');
  const dataClass = (classes.data ?? 'STANDARD') as StorageClass;
  if (!STORAGE_CLASSES.includes(dataClass)) throw new UnsupportedFormatError(`config: unknown storage class ${String(classes.data)}`);
  return {
    version: 1,
    id: String(doc.id),
    created: String(doc.created),
    chunker: {
      min: Number(ch.min),
      avg: Number(ch.avg),
      max: Number(ch.max),
      normalization: Number(ch.normalization) as 0 | 1 | 2 | 3,
      seed: BigInt('0x' + ch.seed),
    },
    compressionLevel: Number(comp.level),
    dataPackTarget: Number(packs?.data_target ?? 16 << 20),
    metaPackTarget: Number(packs?.meta_target ?? 4 << 20),
    dataStorageClass: dataClass,
  };
}
