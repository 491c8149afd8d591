// Error classification of S3Backend, from the shapes the AWS SDK produces (no network).

import { describe, expect, it } from 'vitest';

import { mapS3Error, parseRestoreHeader, S3Backend } from '../../src/backend/s3.js';
import { BackendError, ColdObjectError, InterruptedError, NotFoundError, UsageError } from '../../src/errors.js';

const ctx = { op: 'load', bucket: 'bkt', object: 'repo/data/ab/abcd', endpoint: 'AWS S3', region: 'us-east-1', coldObject: 'data/ab/abcd' };
const svc = (name: string, status: number, extra: object = {}) =>
  Object.assign(new Error(`${name} message`), { name, $metadata: { httpStatusCode: status }, ...extra });
const net = (code: string, name = 'Error') => Object.assign(new Error(`connect ${code} 1.2.3.4:443`), { code, name });

describe('mapS3Error', () => {
  it.each([
    [svc('NoSuchKey', 404), NotFoundError, undefined, /repo\/data\/ab\/abcd not found in s3:\/\/bkt/],
    [svc('NotFound', 404), NotFoundError, undefined, /not found/],
    [svc('NoSuchBucket', 404), BackendError, false, /^S3 bucket "bkt" does not exist at AWS S3$/],
    [svc('InvalidObjectState', 403), ColdObjectError, undefined, /^data\/ab\/abcd: object is in an archive/],
    [svc('AccessDenied', 403), BackendError, false, /^access denied: load s3:\/\/bkt\/repo\/data\/ab\/abcd$/],
    [svc('Forbidden', 403), BackendError, false, /^access denied/],
    [svc('InvalidAccessKeyId', 403), BackendError, false, /rejected the credentials \(InvalidAccessKeyId\)/],
    [svc('SignatureDoesNotMatch', 403), BackendError, false, /rejected the credentials/],
    [svc('ExpiredToken', 400), BackendError, false, /rejected the credentials \(ExpiredToken\)/],
    [Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), BackendError, false, /no AWS credentials found/],
    [new Error('Region is missing'), BackendError, false, /no AWS region configured/],
    [svc('PermanentRedirect', 301, { $response: { headers: { 'x-amz-bucket-region': 'eu-west-3' } } }), BackendError, false, /is in region eu-west-3, not us-east-1/],
    [svc('AuthorizationHeaderMalformed', 400, { Region: 'ap-south-1' }), BackendError, false, /region ap-south-1/],
    [net('ENOTFOUND'), BackendError, true, /^S3 endpoint AWS S3 unreachable \(ENOTFOUND\)/],
    [net('ECONNREFUSED'), BackendError, true, /unreachable \(ECONNREFUSED\)/],
    [net('ECONNRESET', 'TimeoutError'), BackendError, true, /connection to AWS S3 lost \(ECONNRESET\)/],
    [Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }), BackendError, true, /timed out/],
    [svc('SlowDown', 503), BackendError, true, /^S3 SlowDown while trying to load/],
    [svc('InternalError', 500), BackendError, true, /InternalError/],
    [svc('RequestTimeout', 400), BackendError, true, /RequestTimeout/],
    [svc('BadDigest', 400), BackendError, true, /BadDigest/],
    [svc('ServiceUnavailable', 503), BackendError, true, /ServiceUnavailable/],
    [svc('NotImplemented', 501), BackendError, false, /NotImplemented/],
    [svc('InvalidArgument', 400), BackendError, false, /InvalidArgument \(400\)/],
    [svc('TooManyRequests', 429), BackendError, true, /TooManyRequests/],
    [Object.assign(new Error('aborted'), { name: 'AbortError' }), InterruptedError, undefined, /interrupted/],
  ])('%s', (err, cls, transient, msg) => {
    const mapped = mapS3Error(err, ctx);
    expect(mapped).toBeInstanceOf(cls);
    if (transient !== undefined) expect((mapped as BackendError).transient).toBe(transient);
    expect(mapped.message).toMatch(msg);
    expect(mapped.message).not.toContain('\n');
  });

  it('hints point at the setting to change', () => {
    expect(mapS3Error(svc('ExpiredToken', 400), ctx).hint).toMatch(/session token/);
    expect(mapS3Error(svc('PermanentRedirect', 301, { Region: 'eu-west-3' }), ctx).hint).toBe('pass --s3-region eu-west-3');
    expect(mapS3Error(svc('NoSuchBucket', 404), ctx).hint).toMatch(/snap init/);
  });
});

describe('parseRestoreHeader', () => {
  it.each([
    [undefined, { restore: 'none' }],
    ['ongoing-request="true"', { restore: 'ongoing' }],
    ['ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"', { restore: 'done', expiry: new Date('2012-12-21T00:00:00Z') }],
    ['ongoing-request="false"', { restore: 'done' }],
  ])('%s', (header, want) => {
    expect(parseRestoreHeader(header)).toEqual(want);
  });
});

describe('S3Backend options', () => {
  it('validates part size, connections and the bucket', () => {
    expect(() => new S3Backend({ bucket: 'b', region: 'us-east-1', partSize: 1024 })).toThrow(UsageError);
    expect(() => new S3Backend({ bucket: 'b', region: 'us-east-1', connections: 0 })).toThrow(UsageError);
    expect(() => new S3Backend({ bucket: '', region: 'us-east-1' })).toThrow(UsageError);
  });

  it('location names endpoint, bucket and prefix', async () => {
    const a = new S3Backend({ bucket: 'b', prefix: '/x/y/', endpoint: 'http://127.0.0.1:9/', region: 'us-east-1' });
    expect(a.location).toBe('s3:http://127.0.0.1:9/b/x/y');
    const b = new S3Backend({ bucket: 'b', region: 'us-east-1' });
    expect(b.location).toBe('s3:b');
    await a.close();
    await b.close();
  });
});
