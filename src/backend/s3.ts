// S3 backend (AWS and any S3-protocol endpoint), with per-type storage classes and the archive-tier
// operations (HeadObject's x-amz-restore, RestoreObject) behind ColdStorage.
//
// Choices worth knowing:
// - Bodies are always in-memory Buffers, never streams, and the SDK's "flexible checksums" are set to
//   WHEN_REQUIRED: otherwise a streamed PutObject is sent aws-chunked, which some S3 servers (s3rver)
//   store framing and all, silently corrupting the object. The integrity check on upload is a
//   Content-MD5 we compute ourselves, which every S3 implementation understands.
// - The SDK's own retries are off (maxAttempts 1): RetryBackend is the single retry layer, and it
//   only retries errors this file classifies as transient.
// - Every failure becomes a SnapError with a one-line message naming the bucket / object / setting.
//   Credentials never appear in messages or in `location`.

import { createHash } from 'node:crypto';

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  RestoreObjectCommand,
  S3Client,
  UploadPartCommand,
  type BucketLocationConstraint,
  type CompletedPart,
  type HeadObjectCommandOutput,
  type StorageClass,
} from '@aws-sdk/client-s3';

import {
  ARCHIVE_CLASSES,
  objectPath,
  STORAGE_CLASSES,
  TYPE_DIRS,
  type Backend,
  type ColdState,
  type ColdStorage,
  type FileInfo,
  type FileType,
  type Handle,
  type LoadOptions,
  type SaveOptions,
  type StorageClass as RepoStorageClass,
  type StorageClasses,
  type ThawTier,
} from './backend.js';
import { checkHandle, checkRangeArgs, listConfig, resolveRange, throwIfAborted } from './common.js';
import {
  BackendError,
  ColdObjectError,
  InterruptedError,
  NotFoundError,
  SnapError,
  UsageError,
} from '../errors.js';

const MiB = 1024 * 1024;
/**
 * Default multipart part size. 8 MiB is the AWS CLI's default: big enough that per-request overhead
 * is small (and that S3's 10,000-part limit still allows 78 GiB objects), small enough that a failed
 * part costs little to resend and that `connections` parts in flight stay a modest amount of memory.
 * Objects up to this size go up in one PutObject.
 */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** S3's minimum part size (all parts but the last) and maximum part / single PUT size. */
const MIN_PART_SIZE = 5 * MiB;
const MAX_PART_SIZE = 5 * 1024 * MiB;
const DEFAULT_CONNECTIONS = 5;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

export interface S3BackendOptions {
  bucket: string;
  /** Key prefix of the repository inside the bucket ('' or e.g. 'hosts/web1'). */
  prefix?: string;
  /** A non-AWS endpoint, e.g. http://127.0.0.1:9000. Implies path-style addressing. */
  endpoint?: string;
  /** Defaults to the SDK's chain (AWS_REGION, profile); 'us-east-1' for custom endpoints. */
  region?: string;
  forcePathStyle?: boolean;
  /** Explicit credentials; otherwise the SDK's default chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Maximum parallel HTTP connections (also bounds the parts of one multipart upload). Default 5. */
  connections?: number;
  /** Objects larger than this are uploaded in parts of this size. Default 8 MiB, minimum 5 MiB. */
  partSize?: number;
  /**
   * Longest a connection may sit idle (no bytes either way) before the request fails as a transient
   * timeout. An idle limit rather than a total one, so large uploads on slow links are not cut off.
   * Default 60 s.
   */
  requestTimeoutMs?: number;
  /** Time allowed to establish a TCP/TLS connection. Default 10 s. */
  connectTimeoutMs?: number;
  /** ListObjectsV2 page size (S3's maximum and default is 1000). */
  listPageSize?: number;
}

export class S3Backend implements Backend, ColdStorage, StorageClasses {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly endpoint?: string;
  private readonly explicitRegion?: string;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly listPageSize?: number;
  private readonly classes = new Map<FileType, RepoStorageClass>();
  /** Set once any request showed the bucket exists, so a 404 on HEAD means "no such object". */
  private bucketSeen = false;

  constructor(opts: S3BackendOptions) {
    if (!opts.bucket) throw new UsageError('S3 backend: a bucket name is required');
    this.bucket = opts.bucket;
    this.prefix = normalizePrefix(opts.prefix ?? '');
    this.endpoint = opts.endpoint?.replace(/\/+$/, '');
    this.explicitRegion = opts.region;
    const connections = opts.connections ?? DEFAULT_CONNECTIONS;
    if (!Number.isInteger(connections) || connections < 1) {
      throw new UsageError(`S3 backend: connections must be a positive integer, got ${connections}`);
    }
    this.partSize = opts.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isInteger(this.partSize) || this.partSize < MIN_PART_SIZE || this.partSize > MAX_PART_SIZE) {
      throw new UsageError(`S3 backend: part size must be between 5 MiB and 5 GiB, got ${this.partSize}`);
    }
    this.partConcurrency = Math.min(connections, 4);
    this.listPageSize = opts.listPageSize;
    const base = this.endpoint ? `${this.endpoint}/${this.bucket}` : this.bucket;
    this.location = `s3:${base}${this.prefix ? '/' + this.prefix.slice(0, -1) : ''}`;

    const agent = { keepAlive: true, maxSockets: connections };
    this.client = new S3Client({
      region: opts.region ?? (this.endpoint ? 'us-east-1' : undefined),
      ...(this.endpoint ? { endpoint: this.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle ?? this.endpoint !== undefined,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        socketTimeout: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        httpAgent: agent,
        httpsAgent: agent,
      },
    });
  }

  // --- StorageClasses -----------------------------------------------------------------------

  setStorageClass(type: FileType, storageClass: string): void {
    const cls = storageClass.toUpperCase();
    if (!(STORAGE_CLASSES as readonly string[]).includes(cls)) {
      throw new UsageError(
        `unknown S3 storage class "${storageClass}" for ${type}: use one of ${STORAGE_CLASSES.join(', ')}`,
      );
    }
    if (type !== 'data' && cls !== 'STANDARD') {
      throw new UsageError(
        `storage class ${cls} is not allowed for ${type} objects: only data packs may leave STANDARD`,
      );
    }
    this.classes.set(type, cls as RepoStorageClass);
  }

  storageClassOf(type: FileType): RepoStorageClass {
    return this.classes.get(type) ?? 'STANDARD';
  }

  // --- Backend -------------------------------------------------------------------------------

  async create(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.bucketSeen = true;
      return;
    } catch (err) {
      if (status(err) !== 404) throw this.fail(err, 'check bucket');
    }
    const region = this.explicitRegion ?? (await this.client.config.region().catch(() => undefined));
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          ...(region && region !== 'us-east-1'
            ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }
            : {}),
        }),
      );
    } catch (err) {
      const code = errorCode(err);
      if (code === 'BucketAlreadyOwnedByYou') {
        this.bucketSeen = true;
        return;
      }
      if (code === 'BucketAlreadyExists') {
        throw new BackendError(`S3 bucket "${this.bucket}" already exists and belongs to another account`, {
          transient: false,
          cause: err,
          hint: 'bucket names are global: choose another name',
        });
      }
      throw this.fail(err, 'create bucket');
    }
    this.bucketSeen = true;
  }

  async save(h: Handle, data: Uint8Array, opts?: SaveOptions): Promise<void> {
    checkHandle(h);
    throwIfAborted(opts?.signal);
    const key = this.key(h);
    const body = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const cls = this.storageClassOf(h.type);
    const StorageClass = cls === 'STANDARD' ? undefined : (cls as StorageClass);
    if (body.length <= this.partSize) {
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ContentMD5: md5(body),
            StorageClass,
          }),
          { abortSignal: opts?.signal },
        );
      } catch (err) {
        throw this.fail(err, 'save', h);
      }
    } else {
      await this.saveMultipart(h, key, body, StorageClass, opts?.signal);
    }
    this.bucketSeen = true;
  }

  async load(h: Handle, opts?: LoadOptions): Promise<Buffer> {
    checkHandle(h);
    checkRangeArgs(h, opts);
    throwIfAborted(opts?.signal);
    const offset = opts?.offset ?? 0;
    const length = opts?.length;
    if (length === 0) {
      // HTTP cannot ask for zero bytes; check that the (empty) range is inside the object.
      const info = await this.stat(h);
      resolveRange(h, info.size, opts);
      return Buffer.alloc(0);
    }
    const Range =
      length !== undefined ? `bytes=${offset}-${offset + length - 1}` : offset > 0 ? `bytes=${offset}-` : undefined;
    let body: Uint8Array;
    let expected: number | undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(h), Range }), {
        abortSignal: opts?.signal,
      });
      this.bucketSeen = true;
      expected = out.ContentLength;
      if (!out.Body) throw new BackendError(`${this.describe(h)}: empty response body`, { transient: true });
      body = await out.Body.transformToByteArray();
    } catch (err) {
      if (status(err) === 416) {
        // Range starts at or past the end. offset == size with no length is a valid empty range.
        const info = await this.stat(h);
        resolveRange(h, info.size, opts);
        return Buffer.alloc(0);
      }
      throw this.fail(err, 'load', h);
    }
    if (expected !== undefined && body.length !== expected) {
      throw new BackendError(`${this.describe(h)}: short read (${body.length} of ${expected} bytes)`, {
        transient: true,
      });
    }
    if (length !== undefined && body.length !== length) {
      // S3 truncates a range that runs past the end instead of failing.
      throw new BackendError(
        `${this.describe(h)}: range ${offset}-${offset + length} is past the end of the object (got ${body.length} bytes)`,
        { transient: false },
      );
    }
    return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }

  async stat(h: Handle): Promise<FileInfo> {
    checkHandle(h);
    const out = await this.head(h, 'stat');
    return {
      name: h.name,
      size: out.ContentLength ?? 0,
      storageClass: out.StorageClass ?? 'STANDARD',
      ...(out.LastModified ? { modified: out.LastModified } : {}),
    };
  }

  async *list(type: FileType, opts?: { signal?: AbortSignal }): AsyncIterable<FileInfo> {
    if (type === 'config') {
      yield* listConfig(this);
      return;
    }
    const dirPrefix = `${this.prefix}${TYPE_DIRS[type]}/`;
    const nested = type === 'data' || type === 'meta';
    let token: string | undefined;
    do {
      throwIfAborted(opts?.signal);
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: dirPrefix,
            ContinuationToken: token,
            ...(this.listPageSize ? { MaxKeys: this.listPageSize } : {}),
          }),
          { abortSignal: opts?.signal },
        );
      } catch (err) {
        throw this.fail(err, `list ${TYPE_DIRS[type]}/ in`);
      }
      this.bucketSeen = true;
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        const rest = o.Key.slice(dirPrefix.length);
        const parts = rest.split('/');
        if (nested ? parts.length !== 2 || parts[0]!.length !== 2 : parts.length !== 1) continue;
        const name = parts[parts.length - 1]!;
        if (!name) continue;
        yield {
          name,
          size: o.Size ?? 0,
          storageClass: o.StorageClass ?? 'STANDARD',
          ...(o.LastModified ? { modified: o.LastModified } : {}),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async remove(h: Handle): Promise<void> {
    checkHandle(h);
    // DeleteObject succeeds for absent keys; the contract wants NotFoundError, so look first.
    await this.head(h, 'remove');
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(h) }));
    } catch (err) {
      throw this.fail(err, 'remove', h);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  // --- ColdStorage ---------------------------------------------------------------------------

  async coldState(h: Handle): Promise<ColdState> {
    checkHandle(h);
    const out = await this.head(h, 'check storage class of');
    const storageClass = out.StorageClass ?? 'STANDARD';
    // Intelligent-Tiering's opt-in archive tiers also need a restore before a GET.
    const archived = ARCHIVE_CLASSES.has(storageClass) || out.ArchiveStatus !== undefined;
    return { storageClass, archived, ...parseRestoreHeader(out.Restore) };
  }

  async requestThaw(h: Handle, opts: { days: number; tier: ThawTier }): Promise<void> {
    checkHandle(h);
    if (!Number.isInteger(opts.days) || opts.days < 1) {
      throw new UsageError(`thaw days must be a positive integer, got ${opts.days}`);
    }
    try {
      await this.client.send(
        new RestoreObjectCommand({
          Bucket: this.bucket,
          Key: this.key(h),
          RestoreRequest: { Days: opts.days, GlacierJobParameters: { Tier: opts.tier } },
        }),
      );
    } catch (err) {
      if (errorCode(err) === 'RestoreAlreadyInProgress') return;
      if (errorCode(err) === 'InvalidObjectState') {
        throw new BackendError(`${this.describe(h)}: S3 refused the thaw request: the object is not in an archive storage class`, {
          transient: false,
          cause: err,
        });
      }
      throw this.fail(err, `request ${opts.tier} thaw of`, h);
    }
  }

  // --- internals -----------------------------------------------------------------------------

  private key(h: Handle): string {
    return this.prefix + objectPath(h);
  }

  private describe(h?: Handle): string {
    return h ? `s3://${this.bucket}/${this.key(h)}` : `s3://${this.bucket}`;
  }

  private async head(h: Handle, op: string): Promise<HeadObjectCommandOutput> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(h) }));
      this.bucketSeen = true;
      return out;
    } catch (err) {
      if (status(err) === 404 && !this.bucketSeen) {
        // A HEAD has no error body: 404 is "no such key" or "no such bucket". Ask once.
        try {
          await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
          this.bucketSeen = true;
        } catch (bucketErr) {
          throw this.fail(
            status(bucketErr) === 404 ? { Code: 'NoSuchBucket', $metadata: { httpStatusCode: 404 }, cause: bucketErr } : bucketErr,
            op,
            h,
          );
        }
      }
      throw this.fail(err, op, h);
    }
  }

  private async saveMultipart(
    h: Handle,
    key: string,
    body: Buffer,
    StorageClass: StorageClass | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    let uploadId: string | undefined;
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, StorageClass }),
        { abortSignal: signal },
      );
      uploadId = created.UploadId;
      if (!uploadId) throw new BackendError(`${this.describe(h)}: S3 returned no upload ID`, { transient: true });
      const count = Math.ceil(body.length / this.partSize);
      const parts: CompletedPart[] = new Array(count);
      // One failed part stops the others: no point sending the rest of an upload we will abort.
      const stop = new AbortController();
      const partSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count && !partSignal.aborted) {
          const i = next++;
          const chunk = body.subarray(i * this.partSize, Math.min(body.length, (i + 1) * this.partSize));
          const out = await this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: i + 1,
              Body: chunk,
              ContentLength: chunk.length,
              ContentMD5: md5(chunk),
            }),
            { abortSignal: partSignal },
          );
          if (!out.ETag) throw new BackendError(`${this.describe(h)}: S3 returned no ETag for part ${i + 1}`, { transient: true });
          parts[i] = { ETag: out.ETag, PartNumber: i + 1 };
        }
      };
      const workers = Array.from({ length: Math.min(this.partConcurrency, count) }, () =>
        worker().catch((err: unknown) => {
          stop.abort();
          throw err;
        }),
      );
      const results = await Promise.allSettled(workers);
      // Report the first real failure, not the cancellations it caused in the other workers.
      const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
      if (failures.length > 0) throw failures.find((e) => !isAbortError(e)) ?? failures[0];
      throwIfAborted(signal);
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      if (uploadId) {
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
          .catch(() => {});
      }
      throw this.fail(err, 'save', h);
    }
  }

  /** Maps any failure to a SnapError with a one-line message naming the bucket/object/setting. */
  private fail(err: unknown, op: string, h?: Handle): SnapError {
    return mapS3Error(err, {
      op,
      bucket: this.bucket,
      object: h ? this.key(h) : undefined,
      endpoint: this.endpoint ?? 'AWS S3',
      region: this.explicitRegion,
      coldObject: h ? objectPath(h) : undefined,
    });
  }
}

export interface S3ErrorContext {
  /** What was being done, e.g. "load", "save", "create bucket". */
  op: string;
  bucket: string;
  /** Full object key, if the operation was on one object. */
  object?: string;
  /** The endpoint URL, or 'AWS S3'. */
  endpoint: string;
  region?: string;
  /** objectPath() of the handle, used by ColdObjectError. */
  coldObject?: string;
}

const TRANSIENT_NET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);
const TRANSIENT_S3_CODES = new Set([
  'SlowDown',
  'RequestTimeout',
  'InternalError',
  'ServiceUnavailable',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
  'BadDigest', // the body was damaged in transit: sending it again helps
  'XAmzContentSHA256Mismatch', // (same, caught by the payload hash instead of Content-MD5)
  'IncompleteBody',
  'OperationAborted',
  'GlacierExpeditedRetrievalNotAvailable',
]);
const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidToken',
  'InvalidSecurity',
  'AccountProblem',
]);
const REGION_CODES = new Set([
  'PermanentRedirect',
  'AuthorizationHeaderMalformed',
  'IllegalLocationConstraintException',
  'InvalidRegion',
  'Redirect',
  'TemporaryRedirect',
]);

/** Exported for tests; S3Backend uses it for every failure. */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): SnapError {
  if (err instanceof SnapError) return err;
  const what = ctx.object ? `s3://${ctx.bucket}/${ctx.object}` : `s3://${ctx.bucket}`;
  const code = errorCode(err);
  const httpStatus = status(err);
  const name = (err as { name?: string } | null)?.name;

  if (isAbortError(err)) return new InterruptedError(`${ctx.op} ${what}: interrupted`);

  if (code === 'NoSuchKey' || (httpStatus === 404 && ctx.object && (code === 'NotFound' || code === undefined || code === '404'))) {
    return new NotFoundError(`${ctx.object} not found in s3://${ctx.bucket}`, { cause: err });
  }
  if (code === 'NoSuchBucket') {
    return new BackendError(`S3 bucket "${ctx.bucket}" does not exist at ${ctx.endpoint}`, {
      transient: false,
      cause: err,
      hint: 'check the bucket name in the repository location, or create it with `snap init`',
    });
  }
  if (code === 'InvalidObjectState' && ctx.coldObject) {
    return new ColdObjectError(ctx.coldObject);
  }
  if (code && CREDENTIAL_CODES.has(code)) {
    return new BackendError(`S3 rejected the credentials (${code}) for bucket "${ctx.bucket}" at ${ctx.endpoint}`, {
      transient: false,
      cause: err,
      hint:
        code === 'ExpiredToken' || code === 'TokenRefreshRequired' || code === 'InvalidToken'
          ? 'the session token has expired: refresh the credentials (AWS_SESSION_TOKEN, aws sso login, ...)'
          : 'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE',
    });
  }
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(messageOf(err))) {
    return new BackendError(`no AWS credentials found for bucket "${ctx.bucket}"`, {
      transient: false,
      cause: err,
      hint: 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run on a host with an instance role',
    });
  }
  if (/region is missing/i.test(messageOf(err))) {
    return new BackendError(`no AWS region configured for bucket "${ctx.bucket}"`, {
      transient: false,
      cause: err,
      hint: 'pass --s3-region or set AWS_REGION',
    });
  }
  if ((code && REGION_CODES.has(code)) || httpStatus === 301 || httpStatus === 307) {
    const actual = bucketRegion(err);
    return new BackendError(
      `S3 bucket "${ctx.bucket}" is in ${actual ? `region ${actual}` : 'another region'}, not ${ctx.region ?? 'the configured region'}`,
      { transient: false, cause: err, hint: actual ? `pass --s3-region ${actual}` : 'pass --s3-region with the bucket’s region' },
    );
  }
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || httpStatus === 403) {
    return new BackendError(`access denied: ${ctx.op} ${what}`, {
      transient: false,
      cause: err,
      hint: 'check the IAM / bucket policy of the credentials in use',
    });
  }

  const net = netCode(err);
  if (net && UNREACHABLE_CODES.has(net)) {
    return new BackendError(`S3 endpoint ${ctx.endpoint} unreachable (${net}) while trying to ${ctx.op} ${what}`, {
      transient: true,
      cause: err,
      hint: 'check the endpoint host and port, and the network',
    });
  }
  // (The SDK's HTTP handler renames ECONNRESET/EPIPE errors to TimeoutError: look at the code first.)
  if (net === 'ECONNRESET' || net === 'EPIPE') {
    return new BackendError(`connection to ${ctx.endpoint} lost (${net}) while trying to ${ctx.op} ${what}`, {
      transient: true,
      cause: err,
    });
  }
  if (name === 'TimeoutError' || net === 'ETIMEDOUT' || net === 'ESOCKETTIMEDOUT') {
    return new BackendError(`S3 endpoint ${ctx.endpoint} timed out while trying to ${ctx.op} ${what}`, {
      transient: true,
      cause: err,
    });
  }
  if ((code && TRANSIENT_S3_CODES.has(code)) || (httpStatus !== undefined && ((httpStatus >= 500 && httpStatus !== 501) || httpStatus === 429))) {
    return new BackendError(`S3 ${code ?? `HTTP ${httpStatus}`} while trying to ${ctx.op} ${what}`, {
      transient: true,
      cause: err,
    });
  }
  if ((net && TRANSIENT_NET_CODES.has(net)) || /socket hang up|aborted|premature close|terminated/i.test(messageOf(err))) {
    return new BackendError(`connection to ${ctx.endpoint} lost (${net ?? messageOf(err)}) while trying to ${ctx.op} ${what}`, {
      transient: true,
      cause: err,
    });
  }
  if (httpStatus !== undefined && httpStatus >= 400) {
    return new BackendError(`S3 ${code ?? `HTTP ${httpStatus}`} (${httpStatus}) while trying to ${ctx.op} ${what}: ${firstLine(messageOf(err))}`, {
      transient: false,
      cause: err,
    });
  }
  // Not an HTTP answer and not a known network failure (e.g. an unparsable response).
  return new BackendError(`${ctx.op} ${what} failed: ${firstLine(messageOf(err))}`, { transient: false, cause: err });
}

// --- helpers -----------------------------------------------------------------------------------

export function parseRestoreHeader(value: string | undefined): Pick<ColdState, 'restore' | 'expiry'> {
  if (!value) return { restore: 'none' };
  const ongoing = /ongoing-request\s*=\s*"(true|false)"/i.exec(value)?.[1]?.toLowerCase();
  if (ongoing === 'true') return { restore: 'ongoing' };
  const expiryText = /expiry-date\s*=\s*"([^"]+)"/i.exec(value)?.[1];
  const expiry = expiryText ? new Date(expiryText) : undefined;
  if (ongoing === 'false') {
    return { restore: 'done', ...(expiry && !Number.isNaN(expiry.getTime()) ? { expiry } : {}) };
  }
  return { restore: 'none' };
}

function normalizePrefix(p: string): string {
  const trimmed = p.replace(/^\/+|\/+$/g, '');
  return trimmed ? `${trimmed}/` : '';
}

function md5(b: Uint8Array): string {
  return createHash('md5').update(b).digest('base64');
}

function errorCode(err: unknown): string | undefined {
  const e = err as { Code?: unknown; name?: unknown; code?: unknown } | null;
  if (!e) return undefined;
  if (typeof e.Code === 'string') return e.Code;
  // SDK service exceptions carry the S3 error code as their name; plain Errors have name 'Error'.
  if (status(err) !== undefined && typeof e.name === 'string' && e.name !== 'Error') return e.name;
  return undefined;
}

function status(err: unknown): number | undefined {
  const s = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
  return typeof s === 'number' ? s : undefined;
}

function netCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | null | undefined, i = 0; e && i < 4; e = e.cause as typeof e, i++) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0]!.slice(0, 300);
}

function isAbortError(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'AbortError' || err instanceof InterruptedError;
}

function bucketRegion(err: unknown): string | undefined {
  const e = err as { Region?: unknown; $response?: { headers?: Record<string, string | undefined> } } | null;
  if (typeof e?.Region === 'string') return e.Region;
  const h = e?.$response?.headers?.['x-amz-bucket-region'];
  return typeof h === 'string' ? h : undefined;
}
