// Address syntaxes that the flags, the config file, the admin API and the CLI's arguments share. Each parser takes
// the name of what it parses (a Subject), so its error reads right wherever the text came from. Pure.
import { isIP } from 'net';
import { canonicalIp, type Family } from '../host/addr';
import { OptionError, type Subject } from './options';

/** The family of an IP address text (no brackets, no prefix, no zone), or undefined when it is none. */
export function familyOf(addr: string): Family | undefined {
  const v = isIP(addr);
  return v === 4 ? 4 : v === 6 && !addr.includes('%') ? 6 : undefined;
}

/** An IPv4 or IPv6 address, canonical (a VIP, a backend's address). */
export function parseAddress(text: string, s: Subject): { addr: string; family: Family } {
  const family = familyOf(text);
  if (!family) throw s.expected('an IPv4 or IPv6 address (no brackets, no prefix)', JSON.stringify(text));
  return { addr: canonicalIp(text, family), family };
}

export interface BackendText {
  addr: string;
  family: Family;
  port: number | undefined; // undefined: the service's port
  weight: number;
}

/** ADDR[:PORT][@WEIGHT], IPv6 in brackets when a port follows: [2001:db8::1]:8080@2 */
export function parseBackend(text: string, s: Subject): BackendText {
  const bad = (why: string): never => {
    throw new OptionError(`${s.expects('ADDR[:PORT][@WEIGHT] (IPv6 as [ADDR]:PORT)')}, ${why}: "${text}"`);
  };
  let rest = text;
  let weight = 1;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const w = rest.slice(at + 1);
    if (!/^\d+$/.test(w) || Number(w) > 65535) bad('weight must be a whole number from 0 to 65535');
    weight = Number(w);
    rest = rest.slice(0, at);
  }
  let addr: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) bad('missing "]"');
    addr = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) bad('expected ":PORT" after "]"');
      portText = after.slice(1);
    }
  } else if (familyOf(rest) === 6) {
    addr = rest; // bare IPv6 without a port
  } else {
    const colon = rest.lastIndexOf(':');
    addr = colon >= 0 ? rest.slice(0, colon) : rest;
    portText = colon >= 0 ? rest.slice(colon + 1) : undefined;
  }
  const family = familyOf(addr);
  if (!family) return bad('not an IP address');
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) bad('port must be 1-65535');
    port = Number(portText);
  }
  return { addr: canonicalIp(addr, family), family, port, weight };
}
