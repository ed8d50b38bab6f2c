// The "real NIC" setting. Between two namespaces a veth hands the receiver whatever the sender built: with
// TSO/GSO on, 64 KiB super-packets, for free. A physical NIC puts MTU-sized frames on the wire and the
// receiving host's GRO merges them again. So: TSO and GSO off on the client's and the backends' veths (the
// senders, both directions), GRO on on the lb's veths (its ingress), and the lb sees what a NIC delivers.
// Layers: ethtool in the lab namespaces → this file → variants.ts.
import type { Lab } from '../../src/lab/lab';

export type NicRestore = () => Promise<void>;

interface Change {
  role: string;
  dev: string;
  features: Record<string, 'on' | 'off'>;
}

const FEATURE_NAMES: Record<string, string> = {
  tso: 'tcp-segmentation-offload',
  gso: 'generic-segmentation-offload',
  gro: 'generic-receive-offload',
};

/** `ethtool -k` output → {tso: 'on', ...} for the features we touch. */
export function parseFeatures(text: string): Record<string, 'on' | 'off'> {
  const out: Record<string, 'on' | 'off'> = {};
  for (const [short, long] of Object.entries(FEATURE_NAMES)) {
    const m = new RegExp(`^${long}:\\s+(on|off)`, 'm').exec(text);
    if (m) out[short] = m[1] as 'on' | 'off';
  }
  return out;
}

async function setFeatures(lab: Lab, c: Change): Promise<void> {
  const args = Object.entries(c.features).flatMap(([k, v]) => [k, v]);
  if (args.length > 0) await lab.exec(c.role, 'ethtool', ['-K', c.dev, ...args]);
}

/** Applies the real-NIC offloads; returns the function that puts the previous settings back. */
export async function applyRealNic(lab: Lab): Promise<NicRestore> {
  const wanted: Change[] = [
    { role: 'client', dev: lab.client.dev, features: { tso: 'off', gso: 'off' } },
    ...lab.backends.map((b): Change => ({ role: b.role, dev: b.dev, features: { tso: 'off', gso: 'off' } })),
    { role: 'lb', dev: lab.client.lbDev, features: { gro: 'on' } },
    ...lab.backends.map((b): Change => ({ role: 'lb', dev: b.lbDev, features: { gro: 'on' } })),
  ];
  const previous: Change[] = [];
  const restore: NicRestore = async () => {
    for (const c of previous.reverse()) await setFeatures(lab, c);
  };
  try {
    for (const c of wanted) {
      const before = parseFeatures((await lab.exec(c.role, 'ethtool', ['-k', c.dev])).stdout);
      const back: Change = { role: c.role, dev: c.dev, features: {} };
      for (const k of Object.keys(c.features)) if (before[k] !== undefined) back.features[k] = before[k]!;
      previous.push(back);
      await setFeatures(lab, c);
    }
  } catch (err) {
    await restore().catch(() => undefined);
    throw err;
  }
  return restore;
}
