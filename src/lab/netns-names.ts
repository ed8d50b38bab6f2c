// Names the kernel accepts for a network namespace and for an interface, checked before any command is built
// from them.
// Layers: this file → netns.ts, ns-process.ts.

const NS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// IFNAMSIZ is 16 including the terminating NUL.
const IF_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export function assertNsName(name: string): void {
  if (typeof name !== 'string' || !NS_NAME.test(name)) {
    throw new TypeError(`namespace name must match ${NS_NAME}, got ${JSON.stringify(name)}`);
  }
}

export function assertIfName(name: string): void {
  if (typeof name !== 'string' || !IF_NAME.test(name)) {
    throw new TypeError(`interface name must match ${IF_NAME} (at most 15 characters), got ${JSON.stringify(name)}`);
  }
}
