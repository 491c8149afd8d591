// Turns a `--repo` string into a Backend.
//
//   /srv/backup, ./repo, local:/srv/backup        -> LocalBackend
//   s3:https://HOST[:PORT]/BUCKET[/PREFIX]        -> S3Backend on that endpoint, path-style
//   s3:http://HOST[:PORT]/BUCKET[/PREFIX]         -> (same, plain HTTP, e.g. a local MinIO)
//   s3:BUCKET[/PREFIX], s3://BUCKET[/PREFIX]      -> AWS S3; region from --s3-region or the SDK chain
//   s3:s3.REGION.amazonaws.com/BUCKET[/PREFIX]    -> AWS S3 (restic's spelling)
//
// S3 is wrapped as LimitBackend(RetryBackend(S3Backend)): the connection slot is held during the
// retry backoff, so a throttled (SlowDown) endpoint sees fewer requests, not the same number later.
// `memory:` is deliberately not a location: it exists for tests only.

import type { Backend } from './backend.js';
import { LimitBackend } from './limit.js';
import { LocalBackend } from './local.js';
import { RetryBackend, type RetryOptions } from './retry.js';
import type { S3BackendOptions } from './s3.js';
import { UsageError } from '../errors.js';

export interface OpenBackendOptions {
  /** --s3-region */
  s3Region?: string;
  /** Parallel operations on the backend. Default 5 for S3; unlimited for local unless given. */
  connections?: number;
  /** --limit-upload, KiB/s */
  limitUploadKiBps?: number;
  /** --limit-download, KiB/s */
  limitDownloadKiBps?: number;
  /** Explicit S3 credentials (tests); otherwise the SDK's chain: environment, profile, instance role. */
  s3Credentials?: S3BackendOptions['credentials'];
  s3PartSize?: number;
  /** S3: idle limit per request (see S3BackendOptions.requestTimeoutMs). */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  retry?: RetryOptions;
}

export type ParsedLocation =
  | { kind: 'local'; path: string }
  | { kind: 's3'; bucket: string; prefix: string; endpoint?: string; region?: string };

const S3_EXAMPLES = 's3:https://s3.example.com:9000/my-bucket/backups (any S3 endpoint) or s3:my-bucket/backups (AWS)';
const OTHER_SCHEMES = new Set([
  'sftp',
  'rest',
  'b2',
  'azure',
  'gs',
  'swift',
  'rclone',
  'http',
  'https',
  'file',
  'ftp',
  'memory',
  'mem',
]);
const AWS_BUCKET_RE = /^(?=.{3,63}$)[a-z0-9][a-z0-9.-]*[a-z0-9]$/;
const OTHER_BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;

export function parseLocation(location: string): ParsedLocation {
  if (typeof location !== 'string' || location.trim() === '') {
    throw new UsageError('no repository location given: use a directory path, local:PATH, or ' + S3_EXAMPLES);
  }
  if (location.startsWith('local:')) {
    const path = location.slice('local:'.length);
    if (!path) throw new UsageError('local: needs a path, e.g. local:/srv/backup');
    return { kind: 'local', path };
  }
  if (location.startsWith('s3:')) return parseS3(location.slice(3));
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(location)?.[1]?.toLowerCase();
  if (scheme && OTHER_SCHEMES.has(scheme)) {
    if (scheme === 'memory' || scheme === 'mem') {
      throw new UsageError('memory: is not a repository location (it exists for tests); use a path or ' + S3_EXAMPLES);
    }
    if (scheme === 'http' || scheme === 'https') {
      throw new UsageError(`unsupported repository location "${scheme}:...": for an S3 endpoint write s3:${scheme}://HOST[:PORT]/BUCKET[/PREFIX]`);
    }
    throw new UsageError(`unsupported repository location scheme "${scheme}:": use a directory path, local:PATH, or ${S3_EXAMPLES}`);
  }
  return { kind: 'local', path: location };
}

function parseS3(rest: string): ParsedLocation {
  if (/^https?:\/\//i.test(rest)) {
    let url: URL;
    try {
      url = new URL(rest);
    } catch {
      throw new UsageError(`invalid S3 endpoint URL in repository location: use ${S3_EXAMPLES}`);
    }
    if (url.username || url.password) {
      // Do not echo the location back: it contains a secret.
      throw new UsageError(
        'credentials do not belong in the repository location: set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE',
      );
    }
    if (url.search || url.hash) {
      throw new UsageError(`S3 location "s3:${rest}" must not have a query or fragment: use ${S3_EXAMPLES}`);
    }
    const [bucket, prefix] = splitBucket(url.pathname, `s3:${rest}`, OTHER_BUCKET_RE);
    return { kind: 's3', endpoint: `${url.protocol}//${url.host}`, bucket, prefix };
  }
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(rest)) {
    throw new UsageError(`S3 endpoint "s3:${rest}" must be http:// or https://: use ${S3_EXAMPLES}`);
  }
  const path = rest.startsWith('//') ? rest.slice(2) : rest;
  const first = path.split('/', 1)[0] ?? '';
  if (/\.amazonaws\.com$/i.test(first)) {
    const region = /^s3[.-]([a-z0-9-]+)\.amazonaws\.com$/i.exec(first)?.[1];
    const [bucket, prefix] = splitBucket(path.slice(first.length), `s3:${rest}`, AWS_BUCKET_RE);
    return { kind: 's3', bucket, prefix, ...(region && region !== 'dualstack' ? { region } : {}) };
  }
  const [bucket, prefix] = splitBucket(path, `s3:${rest}`, AWS_BUCKET_RE);
  return { kind: 's3', bucket, prefix };
}

function splitBucket(path: string, whole: string, bucketRe: RegExp): [string, string] {
  const parts = path.split('/').filter((p) => p !== '');
  const bucket = parts.shift();
  if (!bucket) throw new UsageError(`no bucket in repository location "${whole}": use ${S3_EXAMPLES}`);
  if (!bucketRe.test(bucket)) {
    throw new UsageError(
      `invalid S3 bucket name "${bucket}" in "${whole}": 3-63 lowercase letters, digits, dots and hyphens; e.g. ${S3_EXAMPLES}`,
    );
  }
  let prefix: string;
  try {
    prefix = parts.map((p) => decodeURIComponent(p)).join('/');
  } catch {
    throw new UsageError(`invalid percent-encoding in the prefix of "${whole}"`);
  }
  return [bucket, prefix];
}

/**
 * The AWS SDK is imported only for S3 locations: it costs about 0.13 s of start-up, on every
 * command, for repositories on local disk.
 */
export async function openBackend(location: string, opts: OpenBackendOptions = {}): Promise<Backend> {
  const parsed = parseLocation(location);
  if (parsed.kind === 'local') {
    const local = new LocalBackend(parsed.path);
    if (opts.connections === undefined && !opts.limitUploadKiBps && !opts.limitDownloadKiBps) return local;
    return new LimitBackend(local, {
      connections: opts.connections ?? 64,
      ...limits(opts),
    });
  }
  const region = opts.s3Region ?? parsed.region;
  const { S3Backend } = await import('./s3.js');
  const s3 = new S3Backend({
    bucket: parsed.bucket,
    prefix: parsed.prefix,
    ...(parsed.endpoint ? { endpoint: parsed.endpoint, forcePathStyle: true } : {}),
    ...(region ? { region } : {}),
    ...(opts.s3Credentials ? { credentials: opts.s3Credentials } : {}),
    ...(opts.connections ? { connections: opts.connections } : {}),
    ...(opts.s3PartSize ? { partSize: opts.s3PartSize } : {}),
    ...(opts.requestTimeoutMs ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
    ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
  });
  return new LimitBackend(new RetryBackend(s3, opts.retry), {
    connections: opts.connections ?? 5,
    ...limits(opts),
  });
}

function limits(opts: OpenBackendOptions): { uploadKiBps?: number; downloadKiBps?: number } {
  return {
    // 0 means "no limit", as in restic.
    ...(opts.limitUploadKiBps ? { uploadKiBps: opts.limitUploadKiBps } : {}),
    ...(opts.limitDownloadKiBps ? { downloadKiBps: opts.limitDownloadKiBps } : {}),
  };
}
