/**
 * Where webhooks may point (DESIGN.md "Webhooks"): http(s) URLs without credentials whose host is,
 * or resolves only to, public unicast addresses. Checked when a webhook is created or its URL
 * changed, and again on every delivery, where the connection goes to the very addresses that
 * were checked (`checkedLookup` is the socket's `lookup`: no second resolution in between).
 *
 * IP literals in any spelling are covered because the WHATWG URL parser already normalises them
 * (`http://2130706433/`, `http://0x7f.1/`, `http://0177.0.0.1/` all have hostname `127.0.0.1`);
 * ipaddr.js classifies the result, IPv4-mapped IPv6 addresses as the IPv4 address they carry.
 * Anything but a plain unicast address is refused: loopback, private, link-local (169.254.169.254,
 * the cloud metadata address, among them), unique-local (fd00:ec2::254), carrier-grade NAT
 * (100.100.100.200), unspecified, multicast, reserved, and the IPv6 ranges that embed an IPv4
 * address (6to4, NAT64, Teredo).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

export class WebhookUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookUrlError';
  }
}

/** Why `address` may not be a webhook target, or null when it may. */
export function forbiddenAddressReason(address: string): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.process(address);
  } catch {
    return `'${address}' is not an IP address`;
  }
  const range = parsed.range();
  return range === 'unicast' ? null : `${parsed.toString()} is a ${range} address`;
}

/** The URL's syntax rules (scheme, credentials); returns the parsed URL. */
export function parseWebhookUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WebhookUrlError(`'${url}' is not an absolute URL.`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new WebhookUrlError(`Webhook URLs must use http or https, not ${parsed.protocol.replace(/:$/, '')}.`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new WebhookUrlError('Webhook URLs must not carry credentials (user:password@); the signature authenticates the sender.');
  }
  return parsed;
}

/** The hostname as DNS or an IP parser wants it: IPv6 literals lose their brackets. */
export function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Resolves a host name to all its addresses (tests pass their own). */
export type Resolver = (host: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = function resolveAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });
};

/**
 * The addresses `host` may be connected to: the literal itself, or every address DNS gives; all
 * of them must be allowed (one private answer among public ones is enough to refuse: the
 * connection could pick it). `allowPrivate` skips the address rules, not the resolution.
 */
export async function checkedAddresses(host: string, allowPrivate: boolean, resolver: Resolver = systemResolver): Promise<LookupAddress[]> {
  const family = isIP(host);
  const addresses = family !== 0 ? [{ address: host, family }] : await resolver(host).catch((err: NodeJS.ErrnoException) => {
    throw new WebhookUrlError(`The host '${host}' could not be resolved (${err.code ?? err.message}).`);
  });
  if (addresses.length === 0) throw new WebhookUrlError(`The host '${host}' has no addresses.`);
  if (!allowPrivate) {
    for (const { address } of addresses) {
      const reason = forbiddenAddressReason(address);
      if (reason) {
        throw new WebhookUrlError(
          family !== 0
            ? `Webhook URLs must not point at internal addresses: ${reason}.`
            : `Webhook URLs must not point at internal addresses: '${host}' resolves to ${address} (${reason.replace(/^\S+ is /, '')}).`,
        );
      }
    }
  }
  return addresses;
}

/** Every rule, with resolution unless private networks are allowed: for create and PATCH. Returns the URL as given. */
export async function checkWebhookUrl(url: string, allowPrivate: boolean, resolver: Resolver = systemResolver): Promise<string> {
  const parsed = parseWebhookUrl(url);
  // Where every address is allowed there is nothing to resolve for (each delivery resolves anyway).
  if (!allowPrivate) await checkedAddresses(bareHost(parsed), allowPrivate, resolver);
  return url;
}

/**
 * A socket `lookup` that resolves, checks, and hands the socket exactly the checked addresses.
 * Works for both call forms Node uses (`all: true` with autoSelectFamily, single address otherwise).
 */
export function checkedLookup(allowPrivate: boolean, resolver: Resolver = systemResolver): LookupFunction {
  return (hostname, options, callback) => {
    checkedAddresses(hostname.replace(/^\[(.*)\]$/, '$1'), allowPrivate, resolver).then(
      (addresses) => {
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        if (wanted.length === 0) {
          callback(Object.assign(new Error(`no IPv${options.family} address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
        } else if (options.all) {
          (callback as unknown as (err: null, addresses: LookupAddress[]) => void)(null, wanted);
        } else {
          callback(null, wanted[0]!.address, wanted[0]!.family);
        }
      },
      (err: Error) => callback(err as NodeJS.ErrnoException, '', 0),
    );
  };
}
