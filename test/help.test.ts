/**
 * `npm start -- --help` (issue 44): prints every environment variable the configuration reads, with its
 * default, and exits 0 without starting a server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './helper.js';

test('--help lists every variable loadConfig reads and exits 0', async () => {
  const source = await readFile(path.join(repoRoot, 'src', 'config.ts'), 'utf8');
  const read = new Set([...source.matchAll(/\b(?:int\('|env\.)([A-Z][A-Z_]+)/g)].map((m) => m[1]!));
  assert.ok(read.size >= 25, `variables found in config.ts: ${[...read]}`);
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'server.ts'), '--help'],
    { cwd: repoRoot, timeout: 60_000, env: { ...process.env, PORT: '1' } });
  const missing = [...read].filter((v) => !new RegExp(`\\b${v}\\b`).test(stdout));
  assert.deepEqual(missing, [], 'every variable is in --help');
  assert.match(stdout, /SHUTDOWN_TIMEOUT_MS\s+30000/);
});
