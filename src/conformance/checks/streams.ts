// Conformance checks of the byte stream and how it ends: half-close either way (rows 4a, 4b), a reset either way
// (rows 5a, 5b), and every byte intact on one big and many concurrent connections (rows 8a, 8b).
// Layers: ../scenario.ts → this file → ../checks.ts (the registry).
import type { Check } from '../check';
import { MiB, mib, runConformanceClient, ServerEvent, serverEvents, shortSha, sleep, startServers, waitServerEvent, withLab, withTarget } from '../scenario';

// ---------------------------------------------------------------------------------------------------------------
// 4. Half-close

const HALF = 1 * MiB;

export const halfCloseByClient: Check = {
  id: '4a',
  title: 'Half-close by the client: backend reads EOF, still answers, client reads all of it, then EOF',
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'halfclose-client', { target: lab.vip4, up: HALF, down: HALF, 'timeout-ms': 20_000 });
        const ev = await waitServerEvent(servers, (e) => e.event === 'halfclose-client');
        const end = r.end as { how: string; code?: string } | undefined;
        const ok = ev !== null && ev.gotEof === true && ev.rxSha === r.txSha && ev.rxBytes === HALF && r.rxSha === ev.txSha && r.rxBytes === HALF && end?.how === 'EOF';
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: ev === null
            ? `backend reported nothing; client: ${JSON.stringify(r)}`
            : `backend read ${mib(Number(ev.rxBytes))} then EOF (SHA-256 ${ev.rxSha === r.txSha ? 'match' : 'MISMATCH'}), then sent ${mib(HALF)}; ` +
              `client read ${mib(Number(r.rxBytes))} (SHA-256 ${r.rxSha === ev.txSha ? 'match' : 'MISMATCH'}) then ${end?.how === 'EOF' ? 'EOF' : `${end?.how} ${end?.code ?? ''}`}`,
          data: { client: r, server: ev },
        };
      });
    }),
};

export const halfCloseByBackend: Check = {
  id: '4b',
  title: 'Half-close by the backend: client reads EOF, still sends, backend reads all of it, then EOF',
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'halfclose-server', { target: lab.vip4, up: HALF, down: HALF, 'timeout-ms': 20_000 });
        const ev = await waitServerEvent(servers, (e) => e.event === 'halfclose-server');
        const end = r.end as { how: string; code?: string } | undefined;
        const ok = ev !== null && end?.how === 'EOF' && r.rxBytes === HALF && r.rxSha === ev.txSha && ev.gotEof === true && ev.rxBytes === HALF && ev.rxSha === r.txSha;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: ev === null
            ? `backend reported nothing; client: ${JSON.stringify(r)}`
            : `client read ${mib(Number(r.rxBytes))} then ${end?.how === 'EOF' ? 'EOF' : `${end?.how} ${end?.code ?? ''}`}, then sent ${mib(HALF)}` +
              `${r.writeError ? ` (write error ${r.writeError})` : ''}; backend read ${mib(Number(ev.rxBytes))} after its FIN ` +
              `(SHA-256 ${ev.rxSha === r.txSha ? 'match' : 'MISMATCH'}) then ${ev.gotEof ? 'EOF' : String(ev.error)}`,
          data: { client: r, server: ev },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 5. Reset

export const resetByBackend: Check = {
  id: '5a',
  title: 'Reset by the backend (SO_LINGER 0 + close): the client reads ECONNRESET, not EOF',
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'reset-by-server', { target: lab.vip4, 'timeout-ms': 10_000 });
        const ev = await waitServerEvent(servers, (e) => e.event === 'reset-me', 2_000);
        const end = r.end as { how: string; code?: string } | undefined;
        const ok = ev !== null && end?.how === 'error' && end.code === 'ECONNRESET';
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `${ev?.backend ?? 'backend'} aborted; client read ended with ${end ? (end.how === 'error' ? end.code : end.how) : String(r.error)}`,
          data: { client: r, server: ev },
        };
      });
    }),
};

export const resetByClient: Check = {
  id: '5b',
  title: 'Reset by the client: the backend reads ECONNRESET, not EOF',
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'reset-by-client', { target: lab.vip4, 'timeout-ms': 10_000 });
        const ev = await waitServerEvent(servers, (e) => e.event === 'wait-reset', 5_000);
        const ok = ev !== null && ev.outcome === 'ECONNRESET';
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `client aborted; ${ev ? `${ev.backend} read ended with ${String(ev.outcome)}` : 'backend reported nothing within 5 s'}`,
          data: { client: r, server: ev },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 8. Integrity

export const bulkIntegrity: Check = {
  id: '8a',
  title: 'Integrity: one connection, N bytes each way at once, SHA-256 end to end',
  proxyMustFail: false,
  run: (kind, ctx) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'integrity', {
          target: lab.vip4, up: ctx.bulkBytes, down: ctx.bulkBytes, conns: 1, 'stall-ms': 20_000, 'timeout-ms': 600_000,
        });
        const c = (r.conns as Array<Record<string, unknown>> | undefined)?.[0] ?? {};
        const ev = await waitServerEvent(servers, (e) => e.event === 'integrity');
        const up = ev !== null && ev.rxBytes === ctx.bulkBytes && ev.rxSha === c.txSha;
        const down = ev !== null && c.rxBytes === ctx.bulkBytes && c.rxSha === ev.txSha;
        const secs = Number(c.ms) / 1000;
        return {
          outcome: up && down ? 'pass' : 'fail',
          evidence: `${mib(ctx.bulkBytes)} up: SHA-256 ${up ? `match (${shortSha(c.txSha)})` : `MISMATCH (${mib(Number(ev?.rxBytes ?? 0))} arrived)`}; ` +
            `${mib(ctx.bulkBytes)} down: ${down ? `match (${shortSha(c.rxSha)})` : `MISMATCH (${mib(Number(c.rxBytes ?? 0))} arrived${c.error ? `, ${c.error}` : ''})`}; ` +
            `${secs.toFixed(1)} s (${((2 * ctx.bulkBytes * 8) / secs / 1e9).toFixed(2)} Gbit/s both ways)`,
          data: { client: c, server: ev },
        };
      });
    }),
};

export const concurrentIntegrity: Check = {
  id: '8b',
  title: 'Integrity: many concurrent connections, every byte of every one checked (SHA-256)',
  proxyMustFail: false,
  run: (kind, ctx) =>
    withLab({ backends: 3, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'integrity', {
          target: lab.vip4, up: ctx.concurrentBytes, down: ctx.concurrentBytes, conns: ctx.concurrentConns,
          concurrency: ctx.concurrentConns, 'stall-ms': 20_000, 'timeout-ms': 120_000,
        });
        const conns = (r.conns as Array<Record<string, unknown>> | undefined) ?? [];
        const deadline = Date.now() + 10_000;
        let evs: ServerEvent[] = [];
        while (Date.now() < deadline) {
          evs = serverEvents(servers).filter((e) => e.event === 'integrity');
          if (evs.length >= conns.length) break;
          await sleep(100);
        }
        const byId = new Map(evs.map((e) => [e.id as string, e]));
        let good = 0;
        const per: Record<string, number> = {};
        const bad: unknown[] = [];
        for (const c of conns) {
          const e = byId.get(c.id as string);
          if (e) per[e.backend] = (per[e.backend] ?? 0) + 1;
          if (e && e.rxBytes === ctx.concurrentBytes && e.rxSha === c.txSha && c.rxBytes === ctx.concurrentBytes && c.rxSha === e.txSha) good++;
          else bad.push({ client: c, server: e ?? null });
        }
        const ok = good === ctx.concurrentConns;
        // How the bad ones went wrong: bytes that arrived, and how each end saw the connection end.
        const how = (bad as Array<{ client: Record<string, unknown>; server: ServerEvent | null }>).slice(0, 3).map(({ client: c, server: e }) =>
          `${c.id}: client read ${String(c.rxBytes)} of ${ctx.concurrentBytes} B then ${c.error ? String(c.error) : c.stalled ? 'stalled' : c.eof ? 'a clean EOF' : 'close'}` +
          `, backend read ${String(e?.rxBytes ?? '?')} B then ${e ? (e.gotEof ? 'EOF' : String(e.error)) : 'nothing'}`);
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `${ctx.concurrentConns} concurrent connections × ${mib(ctx.concurrentBytes)} each way: ${good}/${ctx.concurrentConns} matched both ways` +
            ` (${Object.entries(per).sort().map(([b, n]) => `${b} ${n}`).join(', ')}) in ${(Number(r.elapsedMs) / 1000).toFixed(1)} s` +
            (how.length > 0 ? `; ${how.join('; ')}${bad.length > 3 ? '; …' : ''}` : ''),
          data: { good, per, bad: bad.slice(0, 5) },
        };
      });
    }),
};
