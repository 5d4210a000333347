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

test('one version: package.json, the OpenAPI document, both clients and the newest CHANGELOG release agree', async () => {
  const read = (...p: string[]) => readFile(path.join(repoRoot, ...p), 'utf8');
  const version = JSON.parse(await read('package.json')).version as string;
  const { SERVICE_VERSION } = await import('../src/plugins/openapi.js');
  assert.equal(SERVICE_VERSION, version);
  assert.equal(JSON.parse(await read('clients', 'ts', 'package.json')).version, version);
  assert.match(await read('clients', 'python', 'pyproject.toml'), new RegExp(`^version = "${version}"$`, 'm'));
  assert.match(await read('clients', 'python', 'normgen_client', '__init__.py'), new RegExp(`__version__ = "${version}"`));
  const releases = [...(await read('CHANGELOG.md')).matchAll(/^## (\d+\.\d+\.\d+) — \d{4}-\d\d-\d\d$/gm)].map((m) => m[1]);
  assert.equal(releases[0], version, 'the newest release heading of CHANGELOG.md');
});
