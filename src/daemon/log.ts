/** The daemon's logger: pino JSON lines, pretty-printed when stdout is a terminal. */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export function createLogger(level: string): Logger {
  if (process.stdout.isTTY) {
    return pino({ level, base: { name: 'tapstackd' } }, pretty({ sync: true, colorize: true, ignore: 'pid,hostname' }));
  }
  return pino({ level, base: { name: 'tapstackd', pid: process.pid } }, pino.destination({ dest: 1, sync: true }));
}
