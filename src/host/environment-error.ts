// What the host lacks for l4nat to run (a capability, a kernel feature), with the remedy in the message; `l4nat up`
// refuses to start with it (exit 1) rather than forward wrongly.
export class EnvironmentError extends Error {
  code?: string;
}
