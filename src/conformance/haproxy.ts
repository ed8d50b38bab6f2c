// HAProxy (Debian's) as the reference TCP proxy, in the lab's lb namespace: the VIPs go on the lb's loopback,
// haproxy listens on VIP:port in TCP mode and balances the same lab backends. Runtime changes (add a server, drain
// one) go through its admin socket, a Unix socket in a private temporary directory.
// Layers: lab.ts (processes in namespaces) → this file → target.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Lab } from '../lab/lab';
import { addrAdd, NsProcess } from '../lab/netns';

export interface HaproxyOptions {
  /** Lab backends to balance (default: all). */
  backendIds?: readonly string[];
  port?: number;
  /** roundrobin (default) or source (with consistent hashing, so servers can be added at run time). */
  balance?: 'roundrobin' | 'source';
  /** `timeout client` and `timeout server` (default 60 s each). */
  timeoutClientMs?: number;
  timeoutServerMs?: number;
  /** `tfo` on the bind lines: HAProxy's own listener accepts Fast Open (needs net.ipv4.tcp_fastopen & 2 in lb). */
  tfo?: boolean;
  readyTimeoutMs?: number;
  /** Log every connection (tcplog, with its termination state) on haproxy's stdout. */
  log?: boolean;
}

export function haproxyConfig(lab: Lab, o: HaproxyOptions, socketPath: string): string {
  const port = o.port ?? 8080;
  const ids = o.backendIds ?? lab.backends.map((b) => b.id);
  const tfo = o.tfo ? ' tfo' : '';
  const vips = [lab.vip4, ...(lab.vip6 !== null ? [lab.vip6] : [])];
  return [
    'global',
    `  stats socket ${socketPath} mode 600 level admin`,
    '  maxconn 5000',
    '  nbthread 2',
    ...(o.log ? ['  log stdout format raw local0'] : []),
    'defaults',
    '  mode tcp',
    ...(o.log ? ['  log global', '  option tcplog'] : []),
    '  timeout connect 5s',
    `  timeout client ${o.timeoutClientMs ?? 60_000}ms`,
    `  timeout server ${o.timeoutServerMs ?? 60_000}ms`,
    'frontend vip',
    ...vips.map((v) => `  bind ${v.includes(':') ? `[${v}]` : v}:${port}${tfo}`),
    '  default_backend lab',
    'backend lab',
    `  balance ${o.balance ?? 'roundrobin'}`,
    ...(o.balance === 'source' ? ['  hash-type consistent'] : []),
    ...ids.map((id) => `  server ${id} ${lab.backend(id).ipv4}:${port}`),
    '',
  ].join('\n');
}

/** One command on the admin socket; resolves with the whole answer. */
export function runtimeCommand(socketPath: string, cmd: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`haproxy runtime "${cmd}": no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('connect', () => sock.write(`${cmd}\n`));
    sock.on('data', (d: Buffer) => (out += d.toString('utf8')));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

export class HaproxyProcess {
  constructor(
    readonly lab: Lab,
    readonly proc: NsProcess,
    readonly dir: string,
    readonly socketPath: string,
    readonly config: string,
  ) {}

  runtime(cmd: string): Promise<string> {
    return runtimeCommand(this.socketPath, cmd);
  }

  /** Adds a lab backend as a dynamic server and enables it. */
  async addServer(id: string, port = 8080): Promise<void> {
    const b = this.lab.backend(id);
    const out = await this.runtime(`add server lab/${id} ${b.ipv4}:${port}`);
    if (!/New server registered/i.test(out)) throw new Error(`haproxy add server ${id}: ${out.trim()}`);
    await this.runtime(`enable server lab/${id}`);
  }

  /** Drains a server: no new connections, existing ones go on. */
  async drainServer(id: string): Promise<void> {
    const out = await this.runtime(`set server lab/${id} state drain`);
    if (out.trim() !== '') throw new Error(`haproxy drain ${id}: ${out.trim()}`);
  }

  async stop(): Promise<void> {
    await this.proc.stop({ signal: 'SIGTERM', timeoutMs: 3_000 });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Puts the VIPs on the lb's loopback, starts haproxy in the lb namespace, waits until it answers. */
export async function startHaproxy(lab: Lab, o: HaproxyOptions = {}): Promise<HaproxyProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), 'l4nat-haproxy-'));
  try {
    const socketPath = path.join(dir, 'admin.sock');
    const config = haproxyConfig(lab, o, socketPath);
    const cfgPath = path.join(dir, 'haproxy.cfg');
    writeFileSync(cfgPath, config);
    await addrAdd(lab.lb.ns, 'lo', `${lab.vip4}/32`);
    if (lab.vip6 !== null) await addrAdd(lab.lb.ns, 'lo', `${lab.vip6}/128`);
    // -db: foreground, no daemon; -f: our config. haproxy runs as root inside the lb namespace.
    const proc = lab.spawn('lb', 'haproxy', ['-db', '-f', cfgPath]);
    const h = new HaproxyProcess(lab, proc, dir, socketPath, config);
    const deadline = Date.now() + (o.readyTimeoutMs ?? 10_000);
    for (;;) {
      if (!proc.running) throw new Error(`haproxy exited before it was ready\n${proc.tail()}`);
      try {
        if (/Name: HAProxy/.test(await h.runtime('show info'))) return h;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        await h.stop();
        throw new Error(`haproxy not ready within ${o.readyTimeoutMs ?? 10_000} ms\n${proc.tail()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
