/**
 * The webhook SSRF guard: URL rules, IP literals in every spelling, names resolving to internal
 * addresses, and the socket lookup that connects to the addresses it checked.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkWebhookUrl, forbiddenAddressReason, type Resolver } from '../../server/src/services/webhook-url.ts';
import { postWebhook } from '../../server/src/services/webhook-worker.ts';
import { signWebhook } from '../../server/src/services/webhooks.ts';
import { createHmac } from 'node:crypto';

/** A resolver answering from a table (and counting its calls). */
function fakeDns(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (host: string): Promise<LookupAddress[]> => {
    calls.push(host);
    const addresses = table[host];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { calls });
}

const dns = fakeDns({
  'hooks.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  'metadata.attacker.test': ['169.254.169.254'],
  'loopback.attacker.test': ['127.0.0.1'],
  'mixed.attacker.test': ['93.184.215.14', '10.0.0.7'],
  'v6-local.attacker.test': ['fd00:ec2::254'],
});

const refused = async (url: string, pattern: RegExp) => {
  await expect(checkWebhookUrl(url, false, dns)).rejects.toMatchObject({ name: 'WebhookUrlError', message: expect.stringMatching(pattern) });
};

describe('webhook URL rules', () => {
  it('accepts http(s) URLs of public hosts and public IP literals', async () => {
    await expect(checkWebhookUrl('https://hooks.example.com/registry?x=1', false, dns)).resolves.toBe('https://hooks.example.com/registry?x=1');
    await expect(checkWebhookUrl('http://93.184.215.14:8080/h', false, dns)).resolves.toBeTruthy();
    await expect(checkWebhookUrl('https://[2606:4700::1111]/h', false, dns)).resolves.toBeTruthy();
  });

  it('refuses other schemes, credentials and unresolvable hosts', async () => {
    await refused('ftp://hooks.example.com/x', /http or https, not ftp/);
    await refused('file:///etc/passwd', /http or https, not file/);
    await refused('https://user:secret@hooks.example.com/x', /credentials/);
    await refused('https://user@hooks.example.com/x', /credentials/);
    await refused('https://nowhere.invalid/x', /could not be resolved \(ENOTFOUND\)/);
    await refused('not a url', /not an absolute URL/);
  });

  it.each([
    ['http://127.0.0.1/', 'loopback'],
    ['http://127.1/', 'loopback'],
    ['http://2130706433/', 'loopback'], // decimal
    ['http://0x7f000001/', 'loopback'], // hex
    ['http://0x7f.0.0.1/', 'loopback'],
    ['http://0177.0.0.1/', 'loopback'], // octal
    ['http://017700000001/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'], // IPv4-mapped IPv6
    ['http://[::ffff:7f00:1]/', 'loopback'],
    ['http://169.254.169.254/latest/meta-data/', 'linkLocal'],
    ['http://2852039166/', 'linkLocal'], // 169.254.169.254 in decimal
    ['http://[::ffff:169.254.169.254]/', 'linkLocal'],
    ['http://[fd00:ec2::254]/', 'uniqueLocal'],
    ['http://[fe80::1]/', 'linkLocal'],
    ['http://10.1.2.3/', 'private'],
    ['http://172.16.0.1/', 'private'],
    ['http://192.168.1.1/', 'private'],
    ['http://100.100.100.200/', 'carrierGradeNat'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://[64:ff9b::7f00:1]/', 'rfc6052'], // NAT64 of 127.0.0.1
    ['http://[2002:7f00:1::]/', '6to4'],
  ])('refuses the literal %s (%s)', async (url, range) => {
    await refused(url, new RegExp(`is an? ${range} address`));
  });

  it('refuses names that resolve to internal addresses, including one internal answer among public ones', async () => {
    await refused('http://metadata.attacker.test/', /'metadata.attacker.test' resolves to 169.254.169.254 \(a linkLocal address\)/);
    await refused('http://loopback.attacker.test:8080/', /resolves to 127.0.0.1 \(a loopback address\)/);
    await refused('http://mixed.attacker.test/', /resolves to 10.0.0.7 \(a private address\)/);
    await refused('http://v6-local.attacker.test/', /resolves to fd00:ec2::254 \(a uniqueLocal address\)/);
    // localhost through the system resolver.
    await expect(checkWebhookUrl('http://localhost:8080/hook', false)).rejects.toMatchObject({ message: expect.stringMatching(/loopback/) });
  });

  it('WEBHOOK_ALLOW_PRIVATE_NETWORKS lifts the address rules only', async () => {
    await expect(checkWebhookUrl('http://127.0.0.1:9000/h', true, dns)).resolves.toBeTruthy();
    await expect(checkWebhookUrl('http://metadata.attacker.test/', true, dns)).resolves.toBeTruthy();
    await expect(checkWebhookUrl('https://u:p@127.0.0.1/', true, dns)).rejects.toMatchObject({ message: expect.stringMatching(/credentials/) });
    await expect(checkWebhookUrl('gopher://127.0.0.1/', true, dns)).rejects.toMatchObject({ message: expect.stringMatching(/http or https/) });
  });

  it('classifies addresses', () => {
    expect(forbiddenAddressReason('8.8.8.8')).toBeNull();
    expect(forbiddenAddressReason('::ffff:8.8.8.8')).toBeNull();
    expect(forbiddenAddressReason('::ffff:10.0.0.1')).toBe('10.0.0.1 is a private address');
  });
});

describe('delivery connections', () => {
  let server: http.Server;
  let port: number;
  const seen: { host: string | undefined; body: string }[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ host: req.headers.host, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('connect to the address the check resolved (one resolution, through the checked lookup)', async () => {
    const receiverDns = fakeDns({ 'receiver.test': ['127.0.0.1'] });
    const result = await postWebhook(`http://receiver.test:${port}/h`, { 'Content-Type': 'application/json' }, '{"a":1}', {
      timeoutMs: 5000,
      allowPrivate: true,
      resolver: receiverDns,
    });
    expect(result).toEqual({ ok: true, statusCode: 204, error: null });
    expect(receiverDns.calls).toEqual(['receiver.test']);
    expect(seen.at(-1)).toEqual({ host: `receiver.test:${port}`, body: '{"a":1}' });
  });

  it('refuse at delivery when the name now resolves to an internal address (DNS changed since the webhook was created)', async () => {
    const before = seen.length;
    const rebinding = fakeDns({ 'rebind.test': ['127.0.0.1'] });
    const result = await postWebhook(`http://rebind.test:${port}/h`, {}, '{}', { timeoutMs: 5000, allowPrivate: false, resolver: rebinding });
    expect(result.ok).toBe(false);
    expect(result.statusCode).toBeNull();
    expect(result.error).toMatch(/^Refused: .*'rebind.test' resolves to 127.0.0.1 \(a loopback address\)/);
    const literal = await postWebhook(`http://127.0.0.1:${port}/h`, {}, '{}', { timeoutMs: 5000, allowPrivate: false });
    expect(literal.error).toMatch(/^Refused: .*127.0.0.1 is a loopback address/);
    expect(seen.length).toBe(before);
  });
});

describe('signatures', () => {
  it('follow Standard Webhooks: v1, base64 HMAC-SHA256 of id.timestamp.body keyed with the decoded secret', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw3gVRtQbWDAc=';
    const expected = createHmac('sha256', Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw3gVRtQbWDAc=', 'base64'))
      .update('msg_1.1700000000.{"type":"ping"}')
      .digest('base64');
    expect(signWebhook(secret, 'msg_1', 1_700_000_000, '{"type":"ping"}')).toBe(`v1,${expected}`);
    expect(signWebhook(secret, 'msg_1', 1_700_000_001, '{"type":"ping"}')).not.toBe(`v1,${expected}`);
  });
});
