// A minimal Chrome DevTools Protocol client for Node's inspector (RFC 6455 WebSocket handshake and framing by
// hand: Node 20 has no WebSocket client built in). Used to block l4nat's JS event loop from outside without any
// product hook: `kill -USR1 <pid>` makes Node open its inspector on 127.0.0.1:9229; this script, run in the same
// network namespace, sends one Runtime.evaluate and prints when it was sent and when the answer came back.
//
//   node inspector.js --port 9229 --expression JS [--timeout-ms 30000]
//
// Prints one JSON line {"sentAt":ms,"doneAt":ms,"response":{...}} (epoch ms) and exits 0, or exits 1 with a message.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

function getJson(port: number, path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

/** One masked text frame (clients must mask, RFC 6455 5.3). */
export function encodeFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x81, 0x80 | n]) : n < 65536 ? Buffer.from([0x81, 0x80 | 126, n >> 8, n & 0xff]) : null;
  if (head === null) throw new RangeError('frame too large');
  const mask = randomBytes(4);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

/** Splits complete frames off the front of `buf`; returns them (opcode, payload) and what is left. */
export function decodeFrames(buf: Buffer): { frames: Array<{ fin: boolean; opcode: number; payload: Buffer }>; rest: Buffer } {
  const frames: Array<{ fin: boolean; opcode: number; payload: Buffer }> = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off]!;
    const b1 = buf[off + 1]!;
    let len = b1 & 0x7f;
    let p = off + 2;
    if (len === 126) {
      if (buf.length - p < 2) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (buf.length - p < 8) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskKey = masked ? buf.subarray(p, p + 4) : null;
    if (masked) p += 4;
    if (buf.length - p < len) break;
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (maskKey) for (let i = 0; i < len; i++) payload[i]! ^= maskKey[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
    off = p + len;
  }
  return { frames, rest: buf.subarray(off) };
}

export async function evaluate(port: number, expression: string, timeoutMs: number): Promise<{ sentAt: number; doneAt: number; response: unknown }> {
  const list = (await getJson(port, '/json/list', 5_000)) as Array<{ webSocketDebuggerUrl?: string }>;
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no debugger target on port ${port}: ${JSON.stringify(list)}`);
  const { pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    let upgraded = false;
    let buf: Buffer = Buffer.alloc(0);
    let text = '';
    let sentAt = 0;
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('connect', () => {
      const key = randomBytes(16).toString('base64');
      sock.write(`GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (!/^HTTP\/1\.1 101/.test(head)) {
          clearTimeout(timer);
          sock.destroy();
          reject(new Error(`WebSocket upgrade refused: ${head.split('\r\n')[0]}`));
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        sentAt = Date.now();
        sock.write(encodeFrame(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression, returnByValue: true } })));
      }
      const { frames, rest } = decodeFrames(buf);
      buf = rest;
      for (const f of frames) {
        if (f.opcode === 0x8) {
          clearTimeout(timer);
          reject(new Error('the inspector closed the connection'));
          return;
        }
        if (f.opcode !== 0x1 && f.opcode !== 0x0) continue;
        text += f.payload.toString('utf8');
        if (!f.fin) continue;
        const msg = JSON.parse(text) as { id?: number };
        text = '';
        if (msg.id === 1) {
          clearTimeout(timer);
          const doneAt = Date.now();
          sock.end();
          resolve({ sentAt, doneAt, response: msg });
        }
      }
    });
  });
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const get = (k: string): string | undefined => {
    const i = args.indexOf(k);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const port = Number(get('--port') ?? 9229);
  const expression = get('--expression');
  const timeoutMs = Number(get('--timeout-ms') ?? 30_000);
  if (!expression || !Number.isInteger(port)) {
    process.stderr.write('usage: inspector.js --port 9229 --expression JS [--timeout-ms N]\n');
    process.exit(2);
  }
  evaluate(port, expression, timeoutMs).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0));
    },
    (e: Error) => {
      process.stderr.write(`inspector: ${e.message}\n`);
      process.exit(1);
    },
  );
}
