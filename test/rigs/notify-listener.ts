// A stand-in for systemd's notification socket (sd_notify(3)): an AF_UNIX datagram socket bound to a path, keeping
// every message with the time it arrived. Tests point NOTIFY_SOCKET at it (systemd is not PID 1 here).
// Layers: this file → test/systemd.test.ts, test/tun-deleted-netns.test.ts.

export interface NotifyListener {
  messages: string[];
  /** When each message arrived (Date.now()), index for index. */
  arrivedAt: number[];
  /** A message (past or future) matching pred, within ms. */
  waitFor(pred: (m: string) => boolean, ms?: number): Promise<string>;
  close(): void;
}

export function listenNotify(path: string): NotifyListener {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const unix = require('unix-dgram') as { createSocket(t: string, cb: (buf: Buffer) => void): { bind(p: string): void; close(): void } };
  const messages: string[] = [];
  const arrivedAt: number[] = [];
  const waiters: Array<() => void> = [];
  const sock = unix.createSocket('unix_dgram', (buf) => {
    messages.push(buf.toString());
    arrivedAt.push(Date.now());
    for (const w of waiters.splice(0)) w();
  });
  sock.bind(path);
  return {
    messages,
    arrivedAt,
    close: () => sock.close(),
    async waitFor(pred, ms = 5000) {
      const end = Date.now() + ms;
      for (;;) {
        const m = messages.find(pred);
        if (m !== undefined) return m;
        const left = end - Date.now();
        if (left <= 0) throw new Error(`no matching notification in ${ms} ms; got ${JSON.stringify(messages)}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
  };
}
