/**
 * `npm stop` (`PORT=… npm stop`, default 8080): stop the server that `npm start` started on that port, and
 * no other — it reads `.normgen/server-<PORT>.pid`, sends SIGTERM (queued requests get 503, running ones finish)
 * and waits up to 15 s for the process to end. Exit 0 when stopped or when none was running (says so), 1 when it
 * did not stop in time.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const port = process.env.PORT?.trim() || '8080';
const file = path.join(process.cwd(), '.normgen', `server-${port}.pid`);
let pid: number;
try {
  pid = Number(readFileSync(file, 'utf8').trim());
} catch {
  console.log(`no normgen server started by npm start on port ${port} (no ${path.relative(process.cwd(), file)})`);
  process.exit(0);
}
const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
if (!Number.isInteger(pid) || pid <= 0 || !alive()) {
  console.log(`the server on port ${port} (pid ${pid}) is not running; removing its stale PID file`);
  rmSync(file, { force: true });
  process.exit(0);
}
process.kill(pid, 'SIGTERM');
for (let i = 0; i < 150 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
if (alive()) {
  console.error(`pid ${pid} did not stop within 15 s`);
  process.exit(1);
}
console.log(`stopped the normgen server on port ${port} (pid ${pid})`);
