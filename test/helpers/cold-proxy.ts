// An HTTP proxy in front of s3rver that adds what s3rver does not emulate, following the AWS S3
// documentation, plus fault injection:
//
// Archive tiers (GLACIER, DEEP_ARCHIVE)
// - Records the x-amz-storage-class of every PutObject and CreateMultipartUpload (applied when the
//   upload completes), so multipart objects count too.
// - GET of an archived object answers 403 <Code>InvalidObjectState</Code> until a POST ?restore was
//   received and `thawDelayMs` has passed; afterwards it is readable until the expiry date.
// - POST ?restore: 202 Accepted (first request), 409 RestoreAlreadyInProgress (while ongoing), 200 OK
//   (already restored; expiry extended); 403 InvalidObjectState for a non-archived class.
// - HEAD / GET return x-amz-storage-class (omitted for STANDARD, like AWS) and x-amz-restore:
//   ongoing-request="true" | ongoing-request="false", expiry-date="<RFC 1123 date>".
// - ListObjectsV2 responses get the recorded storage class instead of s3rver's constant STANDARD.
//
// AWS checks s3rver skips
// - Content-MD5 of request bodies (400 BadDigest), x-amz-content-sha256 (400
//   XAmzContentSHA256Mismatch), and, when `credentials` are given, the SigV4 signature itself (403
//   SignatureDoesNotMatch). Requests are forwarded byte for byte with their original Host header, so
//   a signature valid here is valid upstream. One exception: GLACIER_IR, which s3rver 3.7 does not
//   know, is forwarded as STANDARD_IA (the proxy records and reports the real class).
//
// Faults, drawn from a seeded PRNG at `faultRate` per request among `faultKinds`:
//   internal  500 InternalError (not forwarded)
//   slowdown  503 SlowDown (not forwarded)
//   reset     forwarded, then the connection is destroyed after part of the response is sent
//   latency   forwarded after an added delay of latencyMs
//   corrupt   (opt-in) one byte of the request body flipped before the Content-MD5 check
// setStall(true) makes it accept requests and never answer (for timeout tests).

import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultKind = 'internal' | 'slowdown' | 'reset' | 'latency' | 'corrupt';
export const DEFAULT_FAULT_KINDS: readonly FaultKind[] = ['internal', 'slowdown', 'reset', 'latency'];
const ARCHIVE = new Set(['GLACIER', 'DEEP_ARCHIVE']);
/** Storage classes s3rver 3.7 rejects (InvalidStorageClass), and what to forward instead. */
const UNKNOWN_TO_S3RVER: Record<string, string> = { GLACIER_IR: 'STANDARD_IA', EXPRESS_ONEZONE: 'STANDARD', SNOW: 'STANDARD' };

export interface ColdProxyOptions {
  /** s3rver's endpoint, e.g. http://127.0.0.1:40123 */
  upstream: string;
  /** Time from the first POST ?restore until the object is readable. Default 200 ms. */
  thawDelayMs?: number;
  faultRate?: number;
  faultKinds?: readonly FaultKind[];
  /** PRNG seed for fault decisions. Default 1. */
  seed?: number;
  /** Added delay for 'latency' faults, [min, max] ms. Default [20, 120]. */
  latencyMs?: [number, number];
  /** accessKeyId -> secret: verify SigV4 signatures of signed requests. */
  credentials?: Record<string, string>;
  /** Only requests this accepts are eligible for faults (default: all). */
  faultFilter?: FaultFilter;
}

/** Decides which requests may get a fault, e.g. `(r) => r.method === 'PUT' && r.query.includes('partNumber=2')`. */
export type FaultFilter = (r: Pick<RequestRecord, 'method' | 'bucket' | 'key' | 'query'>) => boolean;

export interface RequestRecord {
  method: string;
  bucket: string;
  key: string;
  /** Raw query string without '?'. */
  query: string;
  status: number;
  fault?: FaultKind;
  storageClass?: string;
}

interface ObjectState {
  storageClass: string;
  /** When the first restore request of the current thaw arrived. */
  restoreRequestedAt?: number;
  /** When the thaw completes (restoreRequestedAt + thaw delay). */
  readyAt?: number;
  expiry?: Date;
}

export interface ColdProxy {
  endpoint: string;
  port: number;
  /** Every request, in arrival order. */
  readonly log: readonly RequestRecord[];
  readonly faults: Record<FaultKind, number>;
  /** bucket/key -> number of POST ?restore requests received. */
  readonly restoreRequests: ReadonlyMap<string, number>;
  readonly stats: { md5Checked: number; sha256Checked: number; signaturesChecked: number; coldRejections: number };
  /** Requests matching all given filters (method, bucket, key prefix, query substring, fault). */
  count(f?: { method?: string; bucket?: string; keyPrefix?: string; query?: string; fault?: FaultKind }): number;
  /** Distinct keys that matched the filters, sorted. */
  keys(f?: { method?: string; bucket?: string; keyPrefix?: string; query?: string; okOnly?: boolean }): string[];
  storageClassOf(bucket: string, key: string): string | undefined;
  /** Sets the fault rate, and optionally the kinds and which requests are eligible (null: all). */
  setFaultRate(rate: number, kinds?: readonly FaultKind[], filter?: FaultFilter | null): void;
  setThawDelay(ms: number): void;
  setStall(on: boolean): void;
  /** Clears the log and counters (not the object states). */
  resetCounters(): void;
  close(): Promise<void>;
}

export async function startColdProxy(opts: ColdProxyOptions): Promise<ColdProxy> {
  const up = new URL(opts.upstream);
  const upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let thawDelayMs = opts.thawDelayMs ?? 200;
  let faultRate = opts.faultRate ?? 0;
  let faultKinds: readonly FaultKind[] = opts.faultKinds ?? DEFAULT_FAULT_KINDS;
  let stall = false;
  let faultFilter: FaultFilter | undefined = opts.faultFilter;
  const [latMin, latMax] = opts.latencyMs ?? [20, 120];
  const rng = mulberry32(opts.seed ?? 1);

  const objects = new Map<string, ObjectState>();
  const pendingUploads = new Map<string, string>(); // uploadId -> storage class
  const log: RequestRecord[] = [];
  const faults: Record<FaultKind, number> = { internal: 0, slowdown: 0, reset: 0, latency: 0, corrupt: 0 };
  const restoreRequests = new Map<string, number>();
  const stats = { md5Checked: 0, sha256Checked: 0, signaturesChecked: 0, coldRejections: 0 };
  const sockets = new Set<Socket>();
  const stalled = new Set<http.ServerResponse>();

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`cold-proxy: ${String(err)}`);
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const qIndex = rawUrl.indexOf('?');
    const rawPath = qIndex < 0 ? rawUrl : rawUrl.slice(0, qIndex);
    const rawQuery = qIndex < 0 ? '' : rawUrl.slice(qIndex + 1);
    const query = new URLSearchParams(rawQuery);
    const slash = rawPath.indexOf('/', 1);
    const bucket = decodeURIComponent(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
    const key = slash < 0 ? '' : decodeURIComponent(rawPath.slice(slash + 1));
    const id = `${bucket}/${key}`;
    const rec: RequestRecord = { method, bucket, key, query: rawQuery, status: 0 };
    log.push(rec);

    if (stall) {
      stalled.add(res);
      res.on('close', () => stalled.delete(res));
      return;
    }

    let fault: FaultKind | undefined;
    if (faultRate > 0 && faultKinds.length > 0 && (!faultFilter || faultFilter(rec)) && rng() < faultRate) {
      fault = faultKinds[Math.floor(rng() * faultKinds.length)]!;
      if (fault === 'corrupt' && body.length === 0) fault = undefined;
    }
    if (fault) {
      faults[fault]++;
      rec.fault = fault;
    }

    const reply = (status: number, headers: http.OutgoingHttpHeaders, payload: Buffer) => {
      rec.status = status;
      send(res, method, status, headers, payload, fault === 'reset');
    };
    const xmlError = (status: number, code: string, message: string) =>
      reply(status, { 'content-type': 'application/xml', 'x-amz-request-id': 'cold-proxy' }, errorXml(code, message, key || bucket));

    if (fault === 'internal') return xmlError(500, 'InternalError', 'We encountered an internal error. Please try again.');
    if (fault === 'slowdown') return xmlError(503, 'SlowDown', 'Please reduce your request rate.');
    if (fault === 'latency') await delay(latMin + rng() * (latMax - latMin));
    if (fault === 'corrupt') body[Math.floor(rng() * body.length)]! ^= 0xff;

    // --- checks AWS does --------------------------------------------------------------------
    if (opts.credentials && req.headers.authorization) {
      stats.signaturesChecked++;
      const why = verifySigV4(method, rawPath, rawQuery, req.headers, opts.credentials);
      if (why) return xmlError(403, why.code, why.message);
    }
    const md5 = req.headers['content-md5'];
    if (typeof md5 === 'string') {
      stats.md5Checked++;
      if (createHash('md5').update(body).digest('base64') !== md5) {
        return xmlError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
    }
    const sha = req.headers['x-amz-content-sha256'];
    if (typeof sha === 'string' && /^[0-9a-f]{64}$/.test(sha)) {
      stats.sha256Checked++;
      if (createHash('sha256').update(body).digest('hex') !== sha) {
        return xmlError(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
      }
    }

    // --- archive semantics ------------------------------------------------------------------
    const isObject = key !== '';
    const state = objects.get(id);
    const now = Date.now();
    if (method === 'POST' && isObject && query.has('restore')) {
      restoreRequests.set(id, (restoreRequests.get(id) ?? 0) + 1);
      if (!state) return xmlError(404, 'NoSuchKey', 'The specified key does not exist.');
      if (!ARCHIVE.has(state.storageClass)) {
        return xmlError(403, 'InvalidObjectState', "Restore is not allowed for the object's current storage class");
      }
      const days = Number(/<Days>(\d+)<\/Days>/.exec(body.toString('utf8'))?.[1] ?? '1');
      if (state.readyAt !== undefined && now < state.readyAt) {
        return xmlError(409, 'RestoreAlreadyInProgress', 'Object restore is already in progress');
      }
      if (state.readyAt !== undefined && state.expiry && now < state.expiry.getTime()) {
        state.expiry = new Date(now + days * 86_400_000);
        return reply(200, {}, Buffer.alloc(0));
      }
      state.restoreRequestedAt = now;
      state.readyAt = now + thawDelayMs;
      state.expiry = new Date(state.readyAt + days * 86_400_000);
      return reply(202, {}, Buffer.alloc(0));
    }
    if (method === 'GET' && isObject && state && ARCHIVE.has(state.storageClass) && !isRestored(state, now)) {
      stats.coldRejections++;
      return xmlError(403, 'InvalidObjectState', 'The operation is not valid for the object\'s storage class');
    }

    // --- forward ----------------------------------------------------------------------------
    let forwardHeaders = req.headers;
    const requestedClass = headerString(req.headers['x-amz-storage-class']);
    if (requestedClass && UNKNOWN_TO_S3RVER[requestedClass]) {
      // s3rver 3.7 predates this class and refuses it. The proxy is the source of truth for storage
      // classes, so store the object upstream under a class s3rver knows. (This alters a signed
      // header; s3rver does not verify SigV4 signatures, and the proxy has already verified it.)
      forwardHeaders = { ...req.headers, 'x-amz-storage-class': UNKNOWN_TO_S3RVER[requestedClass] };
    }
    const upstream = await forward(method, rawUrl, forwardHeaders, body);
    const headers: http.OutgoingHttpHeaders = { ...upstream.headers };
    for (const h of ['connection', 'keep-alive', 'transfer-encoding']) delete headers[h];
    let payload = upstream.body;
    const ok = upstream.status >= 200 && upstream.status < 300;
    const isMultipartPart = query.has('partNumber') || query.has('uploadId');

    if (ok && isObject) {
      if (method === 'PUT' && !isMultipartPart && !req.headers['x-amz-copy-source']) {
        const cls = headerString(req.headers['x-amz-storage-class']) ?? 'STANDARD';
        objects.set(id, { storageClass: cls });
        rec.storageClass = cls;
      } else if (method === 'POST' && query.has('uploads')) {
        const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(payload.toString('utf8'))?.[1];
        if (uploadId) pendingUploads.set(uploadId, headerString(req.headers['x-amz-storage-class']) ?? 'STANDARD');
      } else if (method === 'POST' && query.has('uploadId')) {
        const uploadId = query.get('uploadId')!;
        const cls = pendingUploads.get(uploadId) ?? 'STANDARD';
        pendingUploads.delete(uploadId);
        objects.set(id, { storageClass: cls });
        rec.storageClass = cls;
      } else if (method === 'DELETE' && query.has('uploadId')) {
        pendingUploads.delete(query.get('uploadId')!);
      } else if (method === 'DELETE') {
        objects.delete(id);
      } else if (method === 'HEAD' || method === 'GET') {
        const st = objects.get(id);
        if (st) {
          delete headers['x-amz-storage-class'];
          if (st.storageClass !== 'STANDARD') headers['x-amz-storage-class'] = st.storageClass;
        }
        if (st?.readyAt !== undefined) {
          headers['x-amz-restore'] =
            now < st.readyAt
              ? 'ongoing-request="true"'
              : `ongoing-request="false", expiry-date="${st.expiry!.toUTCString()}"`;
        }
      }
    } else if (ok && method === 'GET' && query.get('list-type') === '2') {
      payload = Buffer.from(rewriteListClasses(payload.toString('utf8'), bucket, objects), 'utf8');
    }
    if (method !== 'HEAD') headers['content-length'] = String(payload.length);
    reply(upstream.status, headers, payload);
  }

  function forward(
    method: string,
    path: string,
    headers: http.IncomingHttpHeaders,
    body: Buffer,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const r = http.request(
        // The Host header is passed through unchanged: it is part of the SigV4 signature.
        { host: up.hostname, port: up.port, method, path, headers, agent: upstreamAgent },
        (res) => {
          readBody(res).then((b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }), reject);
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const matches = (
    r: RequestRecord,
    f: { method?: string; bucket?: string; keyPrefix?: string; query?: string; fault?: FaultKind },
  ) =>
    (f.method === undefined || r.method === f.method) &&
    (f.bucket === undefined || r.bucket === f.bucket) &&
    (f.keyPrefix === undefined || r.key.startsWith(f.keyPrefix)) &&
    (f.query === undefined || r.query.includes(f.query)) &&
    (f.fault === undefined || r.fault === f.fault);

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    log,
    faults,
    restoreRequests,
    stats,
    count: (f = {}) => log.filter((r) => matches(r, f)).length,
    keys: (f = {}) =>
      [...new Set(log.filter((r) => matches(r, f) && (!f.okOnly || (r.status >= 200 && r.status < 300))).map((r) => r.key))].sort(),
    storageClassOf: (bucket, key) => objects.get(`${bucket}/${key}`)?.storageClass,
    setFaultRate(rate, kinds, filter) {
      faultRate = rate;
      if (kinds) faultKinds = kinds;
      if (filter !== undefined) faultFilter = filter ?? undefined;
    },
    setThawDelay(ms) {
      thawDelayMs = ms;
    },
    setStall(on) {
      stall = on;
      if (!on) for (const res of stalled) res.destroy();
    },
    resetCounters() {
      log.length = 0;
      for (const k of Object.keys(faults) as FaultKind[]) faults[k] = 0;
      restoreRequests.clear();
      stats.md5Checked = stats.sha256Checked = stats.signaturesChecked = stats.coldRejections = 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      upstreamAgent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function isRestored(st: ObjectState, now: number): boolean {
  return st.readyAt !== undefined && now >= st.readyAt && st.expiry !== undefined && now < st.expiry.getTime();
}

function send(
  res: http.ServerResponse,
  method: string,
  status: number,
  headers: http.OutgoingHttpHeaders,
  body: Buffer,
  reset: boolean,
): void {
  if (!reset) {
    res.writeHead(status, headers);
    res.end(method === 'HEAD' ? undefined : body);
    return;
  }
  if (method === 'HEAD' || body.length === 0) {
    // Nothing to cut in half: drop the connection before answering.
    res.socket?.destroy();
    return;
  }
  // Declare the whole length, send about half, then cut the connection.
  res.writeHead(status, { ...headers, 'content-length': String(body.length) });
  res.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))), () => {
    setImmediate(() => res.socket?.destroy());
  });
}

function readBody(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function xmlUnescape(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function errorXml(code: string, message: string, resource: string): Buffer {
  return Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>` +
      `<Resource>${xmlEscape(resource)}</Resource><RequestId>cold-proxy</RequestId></Error>`,
    'utf8',
  );
}

function rewriteListClasses(xml: string, bucket: string, objects: Map<string, ObjectState>): string {
  return xml.replace(/<Contents>([\s\S]*?)<\/Contents>/g, (whole, inner: string) => {
    const key = /<Key>([\s\S]*?)<\/Key>/.exec(inner)?.[1];
    const cls = key === undefined ? undefined : objects.get(`${bucket}/${xmlUnescape(key)}`)?.storageClass;
    if (!cls) return whole;
    const replaced = /<StorageClass>/.test(inner)
      ? inner.replace(/<StorageClass>[^<]*<\/StorageClass>/, `<StorageClass>${cls}</StorageClass>`)
      : `${inner}<StorageClass>${cls}</StorageClass>`;
    return `<Contents>${replaced}</Contents>`;
  });
}

/** Small, seedable PRNG (mulberry32). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- SigV4 verification (enough of it for S3 header-signed requests) --------------------------

function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function verifySigV4(
  method: string,
  rawPath: string,
  rawQuery: string,
  headers: http.IncomingHttpHeaders,
  credentials: Record<string, string>,
): { code: string; message: string } | undefined {
  const auth = headerString(headers.authorization) ?? '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
    auth,
  );
  if (!m) return { code: 'AuthorizationHeaderMalformed', message: 'The authorization header is malformed' };
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as string[];
  const secret = credentials[accessKeyId!];
  if (secret === undefined) {
    return { code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' };
  }
  const amzDate = headerString(headers['x-amz-date']) ?? '';
  const canonicalQuery = rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const k = decodeURIComponent(i < 0 ? p : p.slice(0, i));
      const v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1));
      return [uriEncode(k), uriEncode(v)] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = signedHeaders!.split(';');
  const canonicalHeaders = names
    .map((n) => {
      const v = headers[n];
      const value = (Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/\s+/g, ' ');
      return `${n}:${value}\n`;
    })
    .join('');
  const payloadHash = headerString(headers['x-amz-content-sha256']) ?? 'UNSIGNED-PAYLOAD';
  const canonicalRequest = [method, rawPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let k: Buffer = createHmac('sha256', `AWS4${secret}`).update(date!).digest();
  for (const part of [region!, service!, 'aws4_request']) k = createHmac('sha256', k).update(part).digest();
  const expected = createHmac('sha256', k).update(stringToSign).digest('hex');
  if (expected !== signature) {
    return {
      code: 'SignatureDoesNotMatch',
      message: 'The request signature we calculated does not match the signature you provided.',
    };
  }
  return undefined;
}
