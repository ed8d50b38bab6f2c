// Logging: one pino logger for the whole process. JSON on stdout; readable (pino-pretty) when stdout is a TTY
// and pino-pretty is installed (it is a dev dependency, so production installs stay lean).
import pino from 'pino';

function prettyAvailable(): boolean {
  try {
    require.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

export type Logger = pino.Logger;

export function createLogger(opts: { level?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.L4NAT_LOG_LEVEL ?? 'info';
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && prettyAvailable());
  if (pretty) {
    return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } } });
  }
  return pino({ level });
}
