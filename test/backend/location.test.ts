import { describe, expect, it } from 'vitest';

import { LimitBackend } from '../../src/backend/limit.js';
import { LocalBackend } from '../../src/backend/local.js';
import { openBackend, parseLocation } from '../../src/backend/location.js';
import { UsageError } from '../../src/errors.js';

describe('parseLocation', () => {
  it.each([
    ['/srv/backup', { kind: 'local', path: '/srv/backup' }],
    ['./repo', { kind: 'local', path: './repo' }],
    ['repo:2024', { kind: 'local', path: 'repo:2024' }],
    ['local:/srv/backup', { kind: 'local', path: '/srv/backup' }],
    ['local:relative/dir', { kind: 'local', path: 'relative/dir' }],
    ['s3:https://minio.example.com:9000/bucket/a/b', { kind: 's3', endpoint: 'https://minio.example.com:9000', bucket: 'bucket', prefix: 'a/b' }],
    ['s3:http://127.0.0.1:4568/test-bucket', { kind: 's3', endpoint: 'http://127.0.0.1:4568', bucket: 'test-bucket', prefix: '' }],
    ['s3:http://127.0.0.1:4568/test-bucket/', { kind: 's3', endpoint: 'http://127.0.0.1:4568', bucket: 'test-bucket', prefix: '' }],
    ['s3:https://host/Legacy_Bucket/p%20q', { kind: 's3', endpoint: 'https://host', bucket: 'Legacy_Bucket', prefix: 'p q' }],
    ['s3:my-bucket', { kind: 's3', bucket: 'my-bucket', prefix: '' }],
    ['s3:my-bucket/hosts/web1', { kind: 's3', bucket: 'my-bucket', prefix: 'hosts/web1' }],
    ['s3://my.bucket/x', { kind: 's3', bucket: 'my.bucket', prefix: 'x' }],
    ['s3:s3.amazonaws.com/my-bucket/x', { kind: 's3', bucket: 'my-bucket', prefix: 'x' }],
    ['s3:s3.eu-west-1.amazonaws.com/my-bucket', { kind: 's3', bucket: 'my-bucket', prefix: '', region: 'eu-west-1' }],
  ])('%s', (loc, want) => {
    expect(parseLocation(loc)).toEqual(want);
  });

  it.each([
    ['', /no repository location/],
    ['local:', /local:\/srv\/backup/],
    ['s3:', /no bucket.*s3:https:\/\/s3\.example\.com:9000\/my-bucket/],
    ['s3:https://host:9000', /no bucket/],
    ['s3:https://host:9000/', /no bucket/],
    ['s3:My_Bucket', /invalid S3 bucket name "My_Bucket".*e\.g\. s3:/],
    ['s3:ab', /invalid S3 bucket name/],
    ['s3:ftp://host/bucket', /must be http:\/\/ or https:\/\//],
    ['s3:https://host/bucket?x=1', /query/],
    ['https://host/bucket', /s3:https:\/\/HOST/],
    ['memory:', /not a repository location/],
    ['sftp:user@host:/srv', /unsupported repository location scheme "sftp:"/],
  ])('rejects %j', (loc, msg) => {
    expect(() => parseLocation(loc)).toThrow(UsageError);
    expect(() => parseLocation(loc)).toThrow(msg);
  });

  it('never echoes credentials embedded in the URL', () => {
    const err = (() => {
      try {
        parseLocation('s3:https://AKIAXXX:topsecret@host/bucket');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(UsageError);
    expect(err!.message).not.toContain('topsecret');
    expect(err!.message).toMatch(/AWS_ACCESS_KEY_ID/);
  });
});

describe('openBackend', () => {
  it('local without limits is a bare LocalBackend; with limits it is wrapped', async () => {
    expect(await openBackend('/tmp/x')).toBeInstanceOf(LocalBackend);
    expect(await openBackend('local:/tmp/x', { limitUploadKiBps: 0 })).toBeInstanceOf(LocalBackend);
    const limited = await openBackend('/tmp/x', { limitUploadKiBps: 100 });
    expect(limited).toBeInstanceOf(LimitBackend);
    expect(limited.location).toBe('local:/tmp/x');
    await expect(openBackend('/tmp/x', { limitDownloadKiBps: -1 })).rejects.toThrow(UsageError);
  });

  it('S3 locations are wrapped and keep a credential-free location', async () => {
    const b = await openBackend('s3:https://s3.example.com/bkt/pre/fix', {
      s3Credentials: { accessKeyId: 'AKIA', secretAccessKey: 'sekrit' },
    });
    expect(b).toBeInstanceOf(LimitBackend);
    expect(b.location).toBe('s3:https://s3.example.com/bkt/pre/fix');
    expect(b.location).not.toContain('sekrit');
    await b.close();
    const aws = await openBackend('s3:my-bucket/p', { s3Region: 'eu-central-1' });
    expect(aws.location).toBe('s3:my-bucket/p');
    await aws.close();
  });
});
