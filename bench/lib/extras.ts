// The figures outside the round-robin comparison: l4nat's resident memory, a table swap under load, and the
// Maglev build times. Layers: src/lab, tools.ts → this file → run.ts.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { AUTH_HEADER_JS, DEFAULT_ADMIN_TOKEN_FILE } from '../../src/lab/admin-client';
import type { Lab } from '../../src/lab/lab';
import { startL4nat } from '../../src/lab/l4nat-process';
import { readDrops } from './kdrops';
import { readMemory } from './sys';
import { adminCounters, counterDelta, nodeInLb, runTest, sleep, SWAP_PORT, RR_PORT } from './tools';

export interface MemoryResult {
  flowCapacity: number;
  idleRssKiB: number;
  /** After a short burst of new connections (flow entries created). */
  loadedRssKiB: number;
  hwmKiB: number;
}

/** l4nat's VmRSS with a given flow-table capacity: right after start, and after a burst of connections. */
export async function measureMemory(lab: Lab, tool: string, flowCapacity: number, burstSeconds: number, l4root?: string): Promise<MemoryResult> {
  const l4 = await startL4nat(lab, {
    ...(l4root !== undefined ? { root: l4root } : {}),
    vips: [lab.vip4],
    ports: [`${RR_PORT}/tcp`],
    backends: lab.backends.map((b) => b.ipv4),
    extraArgs: ['--flow-capacity', String(flowCapacity), '--stats-interval', '0', '--admin-port', '9182'],
  });
  try {
    const pid = l4.pid;
    if (pid === undefined) throw new Error('l4nat has no pid');
    await sleep(500);
    const idle = readMemory(pid);
    await runTest('crr4', { lab, tool, target: lab.vip4, backends: lab.backends, duration: burstSeconds });
    const loaded = readMemory(pid);
    if (idle === null || loaded === null) throw new Error('l4nat exited during the memory measurement');
    return { flowCapacity, idleRssKiB: idle.rssKiB, loadedRssKiB: loaded.rssKiB, hwmKiB: loaded.hwmKiB };
  } finally {
    await l4.stop(10_000);
  }
}

export interface SwapPhase {
  /** control: traffic only; reads: plus admin API reads in a loop; swaps: plus weight changes in a loop. */
  phase: 'control' | 'reads' | 'swaps';
  rate: number;
  seconds: number;
  sent: number;
  /** Distinct sequence numbers received, over all backends. */
  received: number;
  lost: number;
  duplicates: number;
  newFlows: number;
  /** Admin requests answered 200 (weight changes in the swaps phase, reads in the reads phase), and failed. */
  weightChanges: number;
  weightChangeErrors: number;
  /** l4nat's drop counters that moved during the phase. */
  drops: Record<string, number>;
  /** Kernel drop counters that moved during the phase (see kdrops.ts): loss outside l4nat's code. */
  kernelDrops: Record<string, number>;
}

/**
 * Admin API requests in a loop for a while, inside the lb namespace; prints {ok, failed, lastError}. Mode
 * "patch" changes backend weights (each change rebuilds and publishes the tables); mode "get" reads the
 * services view at the same pace (the same HTTP and JSON work, no table change).
 */
const ADMIN_LOOP = `${AUTH_HEADER_JS}
  const [mode, port, service, b1, b2, ms, gap, tokenFile] = process.argv.slice(1);
  const auth = authHeader(tokenFile);
  const base = 'http://127.0.0.1:' + port + '/v1/services';
  // b1 cycles through 1, 3, 0 (drained), 2; b2 through 2, 1, 3, 2: never both drained.
  const w1 = [1, 3, 0, 2], w2 = [2, 1, 3, 2];
  const end = Date.now() + Number(ms);
  let ok = 0, failed = 0, i = 0, lastError = '';
  (async () => {
    while (Date.now() < end) {
      try {
        let r;
        if (mode === 'patch') {
          const b = i % 2 === 0 ? b1 : b2;
          const weight = (i % 2 === 0 ? w1 : w2)[(i >> 1) % 4];
          r = await fetch(base + '/' + encodeURIComponent(service) + '/backends/' + encodeURIComponent(b), {
            method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ weight }),
          });
        } else {
          r = await fetch(base, { headers: auth });
        }
        const text = await r.text();
        if (r.status === 200) ok++; else { failed++; lastError = r.status + ' ' + text; }
      } catch (e) { failed++; lastError = e.message; }
      i++;
      await new Promise((res) => setTimeout(res, Number(gap)));
    }
    console.log(JSON.stringify({ ok, failed, lastError }));
  })();`;

/**
 * UDP at a fixed rate through l4nat (default hashing over the 5-tuple, 32 flows with a new flow every 1/50 s),
 * three times: traffic alone; with admin API reads in a loop (the control plane's CPU load without a table
 * change); with backend weights changed through the admin API as often as it answers (every `gapMs`). Every
 * datagram carries a sequence number; the backends count the distinct ones they receive.
 */
export async function swapUnderLoad(lab: Lab, tool: string, rate: number, seconds: number, l4root?: string, gapMs = 10): Promise<SwapPhase[]> {
  const adminPort = 9181;
  const [b1, b2] = lab.backends;
  if (b1 === undefined || b2 === undefined) throw new Error('the table-swap test needs two backends');
  const l4 = await startL4nat(lab, {
    ...(l4root !== undefined ? { root: l4root } : {}),
    vips: [lab.vip4],
    ports: [`${SWAP_PORT}/udp`],
    backends: lab.backends.map((b) => b.ipv4),
    extraArgs: ['--stats-interval', '0', '--admin-port', String(adminPort)],
  });
  const phases: SwapPhase[] = [];
  try {
    for (const phase of ['control', 'reads', 'swaps'] as const) {
      const before = await adminCounters(lab, adminPort);
      const kBefore = await readDrops(lab);
      const runid = Math.floor(Math.random() * 0x7fffffff);
      const maxseq = Math.ceil(rate * seconds * 1.2) + 1000;
      const sinks = lab.backends.map((b) =>
        lab.spawn(b.role, tool, ['udp-sink', String(SWAP_PORT), String(seconds + 20), '3000', String(runid), String(maxseq)]),
      );
      try {
        await Promise.all(sinks.map((s) => s.waitForLine((l) => l === 'ready', { timeoutMs: 5_000, what: 'udp-sink ready', stream: 'stderr' })));
        const sender = lab.exec(
          'client',
          tool,
          ['udp-send', lab.vip4, String(SWAP_PORT), String(seconds), '64', String(rate), String(runid), '32', String(Math.max(1, Math.round(rate / 50)))],
          { timeoutMs: (seconds + 15) * 1000 },
        );
        let patches: Promise<Record<string, unknown>> | null = null;
        if (phase !== 'control') {
          // Start once traffic flows, stop before it ends: every change happens under load.
          patches = sleep(300).then(() =>
            nodeInLb(
              lab,
              ADMIN_LOOP,
              [phase === 'swaps' ? 'patch' : 'get', String(adminPort), `${lab.vip4}:${SWAP_PORT}/udp`, `${b1.ipv4}:${SWAP_PORT}/udp`, `${b2.ipv4}:${SWAP_PORT}/udp`, String(Math.max(200, seconds * 1000 - 800)), String(gapMs), DEFAULT_ADMIN_TOKEN_FILE],
              (seconds + 20) * 1000,
            ),
          );
        }
        const sent = JSON.parse((await sender).stdout.trim().split('\n').pop()!) as { sent: number; new_flows: number };
        const patched = patches === null ? { ok: 0, failed: 0 } : await patches;
        await sleep(500);
        for (const s of sinks) s.kill('SIGTERM');
        await Promise.all(sinks.map((s) => s.exited));
        let received = 0;
        let duplicates = 0;
        for (const s of sinks) {
          const line = s.stdoutLines.filter((l) => l.startsWith('{')).pop();
          if (line === undefined) throw new Error(`udp-sink in ${s.ns} printed no result\n${s.tail(5)}`);
          const o = JSON.parse(line) as { unique: number; duplicates: number };
          received += o.unique;
          duplicates += o.duplicates;
        }
        const after = await adminCounters(lab, adminPort);
        const kAfter = await readDrops(lab);
        phases.push({
          phase,
          rate,
          seconds,
          sent: sent.sent,
          received,
          lost: sent.sent - received,
          duplicates,
          newFlows: sent.new_flows,
          weightChanges: Number(patched.ok),
          weightChangeErrors: Number(patched.failed),
          drops: counterDelta(before.drops, after.drops),
          kernelDrops: counterDelta(kBefore, kAfter),
        });
        if (Number(patched.failed) > 0) process.stderr.write(`bench: admin requests failed: ${String(patched.lastError)}\n`);
      } finally {
        for (const s of sinks) if (s.running) await s.stop({ timeoutMs: 1_000 });
      }
    }
  } finally {
    await l4.stop(10_000);
  }
  return phases;
}

/** Runs dist/bench/maglev-build.js (no lab needed: pure computation) and returns its Markdown table. */
export function maglevBuildTimes(root: string, runs: number): Promise<string> {
  const script = path.join(root, 'dist', 'bench', 'maglev-build.js');
  if (!existsSync(script)) return Promise.reject(new Error(`${script} is missing: build with \`npx tsc -p tsconfig.json\``));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, '--runs', String(runs)], { timeout: 300_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`maglev-build failed: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}
