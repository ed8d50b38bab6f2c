// Host set-up, layer 2: a thin layer over the `netlink` package's rtnetlink socket (mildsunrise/node_netlink).
// It adds what that package leaves out: errors shaped like Node's own (errno, code, syscall 'rtnetlink', a
// message naming the operation and the object), request timeouts, the NLM_F_CREATE|NLM_F_EXCL flags on adds,
// and a separate socket for notifications (see RtnlMonitor for why).
import * as os from 'os';
import * as util from 'util';
import { createRtNetlink, FlagsNew, rt, ifla } from 'netlink';
import type { RtNetlinkSocket, NetlinkMessage } from 'netlink';
import { Family, afOf } from './addr';

export const DEFAULT_TIMEOUT_MS = 5000;

/** An rtnetlink failure, shaped like Node's system errors (errno is negative, as in libuv). */
export class RtnlError extends Error {
  errno: number;
  code: string;
  syscall = 'rtnetlink' as const;
  /** e.g. 'add route' */
  operation: string;
  /** Description of the object, if any. */
  object?: string;
  constructor(code: string, errno: number, operation: string, object: string | undefined, detail: string) {
    super(`${code}: ${detail}, rtnetlink ${operation}${object ? ` ${object}` : ''}`);
    this.name = 'RtnlError';
    this.code = code;
    this.errno = errno;
    this.operation = operation;
    if (object !== undefined) this.object = object;
  }
}

const ERRNO = os.constants.errno as Record<string, number>;

/** Turns whatever the netlink package threw into an RtnlError. The package rejects a request with a plain
 * `Error('Request rejected: EEXIST')` (no errno property) and a timeout with 'Timeout has been reached';
 * socket errors are already ErrnoExceptions with a positive errno. */
export function toRtnlError(err: unknown, operation: string, object?: string): RtnlError {
  if (err instanceof RtnlError) return err;
  const e = err as { message?: unknown; code?: unknown; errno?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  let code: string | undefined;
  let errno: number | undefined;
  const m = /Request rejected: (-?\w+)/.exec(message);
  if (m) {
    if (/^-?\d+$/.test(m[1])) errno = -Math.abs(Number(m[1]));
    else code = m[1];
  } else if (/Timeout has been reached/.test(message)) {
    code = 'ETIMEDOUT';
  } else if (typeof e?.code === 'string') {
    code = e.code;
  } else if (typeof e?.errno === 'number') {
    errno = -Math.abs(e.errno);
  }
  if (code !== undefined && errno === undefined && ERRNO[code] !== undefined) errno = -ERRNO[code];
  if (code === undefined && errno !== undefined) {
    try { code = util.getSystemErrorName(errno); } catch { code = String(errno); }
  }
  let detail = message;
  if (errno !== undefined) {
    const known = util.getSystemErrorMap().get(errno);
    if (known) detail = known[1];
  }
  const out = new RtnlError(code ?? 'EIO', errno ?? -(ERRNO.EIO ?? 5), operation, object, detail);
  (out as Error & { cause?: unknown }).cause = err;
  return out;
}

export function isErrCode(err: unknown, ...codes: string[]): boolean {
  return typeof (err as { code?: unknown })?.code === 'string' && codes.includes((err as { code: string }).code);
}

export interface RtnlOptions {
  /** Per-request timeout; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Called for asynchronous socket errors (an 'error' event with no listener would throw). */
  onError?: (err: RtnlError) => void;
}

const CREATE_EXCL = FlagsNew.CREATE | FlagsNew.EXCL;

/** Request socket: dumps, adds, deletes. It joins no multicast group, so replies never mix with notifications.
 * Requests run one at a time: the netlink package reassembles multipart (dump) replies in a single per-socket
 * buffer, so two dumps in flight, or an ACK arriving in the middle of a dump, fail with 'Multipart message not
 * terminated properly'. */
export class Rtnl {
  readonly sock: RtNetlinkSocket;
  private readonly timeoutMs: number;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(sock: RtNetlinkSocket, opts: RtnlOptions) {
    this.sock = sock;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const onError = opts.onError;
    sock.socket.on('error', (err) => {
      const e = toRtnlError(err, 'socket');
      try { onError?.(e); } catch { /* never throw into the native callback: it aborts the process */ }
    });
  }

  static open(opts: RtnlOptions = {}): Rtnl {
    let sock: RtNetlinkSocket;
    try {
      sock = createRtNetlink();
    } catch (err) {
      throw toRtnlError(err, 'open socket');
    }
    try {
      return new Rtnl(sock, opts);
    } catch (err) {
      sock.socket.close();
      throw err;
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.socket.close();
  }

  /** Runs one request, converting its failure into an RtnlError naming `operation` and `object`. */
  async call<T>(operation: string, object: string | undefined, fn: (sock: RtNetlinkSocket, timeout: number) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closed) throw new RtnlError('EBADF', -(ERRNO.EBADF ?? 9), operation, object, 'socket is closed');
      try {
        return await fn(this.sock, this.timeoutMs);
      } catch (err) {
        throw toRtnlError(err, operation, object);
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async getLinkByName(name: string): Promise<rt.LinkMessage> {
    const res = await this.call('get link', name, (s, timeout) => s.getLink({}, { ifname: name }, { timeout }));
    if (res.length !== 1) throw new RtnlError('ENODEV', -(ERRNO.ENODEV ?? 19), 'get link', name, 'no such device');
    return res[0];
  }

  async getLinkByIndex(index: number): Promise<rt.LinkMessage> {
    const res = await this.call('get link', `#${index}`, (s, timeout) => s.getLink({ index }, {}, { timeout }));
    if (res.length !== 1) throw new RtnlError('ENODEV', -(ERRNO.ENODEV ?? 19), 'get link', `#${index}`, 'no such device');
    return res[0];
  }

  async dumpLinks(): Promise<rt.LinkMessage[]> {
    return this.call('dump links', undefined, (s, timeout) => s.getLinks({}, {}, { timeout }));
  }

  async setLink(what: string, data: rt.Link, attrs: ifla.LinkAttrs = {}): Promise<void> {
    await this.call('set link', what, (s, timeout) => s.setLink(data, attrs, { timeout }));
  }

  async getAddresses(family: Family, index: number): Promise<rt.AddressMessage[]> {
    return (await this.dumpAddresses(family)).filter((a) => a.data.index === index);
  }

  /** Every address of a family, on every link. */
  async dumpAddresses(family: Family): Promise<rt.AddressMessage[]> {
    const res = await this.call('dump addresses', `ipv${family}`, (s, timeout) => s.getAddresses({ family: afOf(family) }, {}, { timeout }));
    return res.filter((a) => a.data.family === afOf(family));
  }

  async delAddress(what: string, data: rt.Address, attrs: rt.AddressAttrs): Promise<void> {
    await this.call('delete address', what, (s, timeout) => s.delAddress(data, attrs, { timeout }));
  }

  /** All routes of a family, all tables (without NETLINK_GET_STRICT_CHK the kernel ignores dump filters). */
  async dumpRoutes(family: Family): Promise<rt.RouteMessage[]> {
    const res = await this.call('dump routes', `ipv${family}`, (s, timeout) => s.getRoutes({ family: afOf(family) }, {}, { timeout }));
    return res.filter((r) => r.data.family === afOf(family));
  }

  async dumpRules(family: Family): Promise<rt.RuleMessage[]> {
    const res = await this.call('dump rules', `ipv${family}`, (s, timeout) => s.getRules({ family: afOf(family) }, {}, { timeout }));
    return res.filter((r) => r.data.family === afOf(family));
  }

  /** Adds with NLM_F_CREATE|NLM_F_EXCL: fails with EEXIST instead of adding a duplicate or replacing
   * someone else's route. */
  async newRoute(what: string, data: rt.Route, attrs: rt.RouteAttrs): Promise<void> {
    await this.call('add route', what, (s, timeout) => s.newRoute(data, attrs, { timeout, flags: CREATE_EXCL }));
  }

  async delRoute(what: string, data: rt.Route, attrs: rt.RouteAttrs): Promise<void> {
    await this.call('delete route', what, (s, timeout) => s.delRoute(data, attrs, { timeout }));
  }

  /** NLM_F_EXCL matters even more for rules: without it the kernel happily adds identical duplicates. */
  async newRule(what: string, data: rt.Rule, attrs: rt.RuleAttrs): Promise<void> {
    await this.call('add rule', what, (s, timeout) => s.newRule(data, attrs, { timeout, flags: CREATE_EXCL }));
  }

  async delRule(what: string, data: rt.Rule, attrs: rt.RuleAttrs): Promise<void> {
    await this.call('delete rule', what, (s, timeout) => s.delRule(data, attrs, { timeout }));
  }
}

export type RtnlEvent =
  | { type: 'newroute'; msg: rt.RouteMessage }
  | { type: 'delroute'; msg: rt.RouteMessage }
  | { type: 'newrule'; msg: rt.RuleMessage }
  | { type: 'delrule'; msg: rt.RuleMessage }
  | { type: 'newlink'; msg: rt.LinkMessage }
  | { type: 'dellink'; msg: rt.LinkMessage }
  | { type: 'newaddr'; msg: rt.AddressMessage }
  | { type: 'deladdr'; msg: rt.AddressMessage };

const EVENT_TYPES: Record<number, RtnlEvent['type']> = {
  [rt.MessageType.NEWROUTE]: 'newroute',
  [rt.MessageType.DELROUTE]: 'delroute',
  [rt.MessageType.NEWRULE]: 'newrule',
  [rt.MessageType.DELRULE]: 'delrule',
  [rt.MessageType.NEWLINK]: 'newlink',
  [rt.MessageType.DELLINK]: 'dellink',
  [rt.MessageType.NEWADDR]: 'newaddr',
  [rt.MessageType.DELADDR]: 'deladdr',
};

export type MonitorGroup = keyof typeof rt.MulticastGroups;

/** Notification socket. Separate from the request socket because the kernel multicasts a change with the
 * sequence number of the request that caused it, before the ACK; the netlink package matches replies by
 * sequence number alone, so on a shared socket our own notification would be taken for the reply (and lost to
 * the listener). Listener exceptions are caught: one thrown into the addon's callback aborts the process.
 * The socket does not keep the event loop alive. */
export class RtnlMonitor {
  private readonly sock: RtNetlinkSocket;
  private closed = false;

  constructor(groups: readonly MonitorGroup[], onEvent: (ev: RtnlEvent) => void, onError: (err: RtnlError) => void) {
    let sock: RtNetlinkSocket;
    try {
      sock = createRtNetlink();
    } catch (err) {
      throw toRtnlError(err, 'open monitor socket');
    }
    this.sock = sock;
    try {
      // A larger buffer makes ENOBUFS (lost notifications) less likely when a routing daemon churns.
      try { sock.socket.setRecvBufferSize(1 << 20); } catch { /* best effort */ }
      sock.socket.on('error', (err) => {
        try { onError(toRtnlError(err, 'receive notifications')); } catch { /* see class comment */ }
      });
      sock.socket.on('message', (msgs: NetlinkMessage[]) => {
        for (const m of msgs) {
          const type = EVENT_TYPES[m.type];
          if (!type) continue;
          try {
            const parsed = rt.parseMessage(m.type, m.data);
            onEvent({ type, msg: parsed } as RtnlEvent);
          } catch (err) {
            try { onError(toRtnlError(err, 'parse notification')); } catch { /* see class comment */ }
          }
        }
      });
      for (const g of groups) sock.addMembership(g);
    } catch (err) {
      sock.socket.close();
      throw toRtnlError(err, 'join notification groups');
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.socket.close();
  }
}
