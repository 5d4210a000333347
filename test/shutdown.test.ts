/**
 * Graceful shutdown of the real server process (`src/server.ts` through tsx): SIGTERM while requests
 * are in flight: every in-flight request gets its 200 answer, then the process exits with code 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { formData, grayPhoto, repoRoot } from './helper.js';

test('SIGTERM drains in-flight requests before the process exits', async () => {
  const port = 18000 + Math.floor(Math.random() * 1000);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'server.ts')], {
    cwd: repoRoot, env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', WORKERS: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = once(child, 'exit');
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try { if ((await fetch(`${base}/readyz`)).status === 200) break; } catch { /* not listening yet */ }
      assert.ok(i < 600, `server not ready: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const photo = await grayPhoto();
    const send = () => fetch(`${base}/v1/translate`, { method: 'POST', body: formData({ image: { data: photo, type: 'image/png' } }) });
    const inflight = [send(), send(), send()];
    await new Promise((r) => setTimeout(r, 150));
    child.kill('SIGTERM');
    const replies = await Promise.all(inflight);
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200]);
    for (const r of replies) assert.ok((await r.arrayBuffer()).byteLength > 1000);
    const [code] = await exited;
    assert.equal(code, 0, stderr);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
