/**
 * The README's copy-paste blocks, run as a new user would (issue 20):
 * - "Try it": the `sh` block under `## Try it`, extracted from README.md and run with bash from the
 *   repository root (it starts the real server with `npm start`, waits for /readyz, calls the three
 *   models and writes `out/`); the server it started is stopped with its process group;
 * - "Clients": the `python` (requests) and `js` (fetch) blocks under `## Clients` of docs/api.md (the README
 *   links there), run against the real app listening on a port;
 * - the README is for users (issue 44): at most 200 lines, no dates, no issue numbers, no work history.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, repoRoot } from './helper.js';

/** The fenced blocks of language `lang` in the section of a Markdown text that starts with `heading`. */
export function blocks(readme: string, heading: string, lang: string): string[] {
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README has no section ${heading}`);
  const next = readme.indexOf('\n## ', start + heading.length + 2);
  const section = readme.slice(start, next < 0 ? undefined : next);
  return [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
}

const size = async (file: string) => { const m = await sharp(path.join(repoRoot, file)).metadata(); return [m.width, m.height]; };
const formatOf = async (file: string) => (await sharp(path.join(repoRoot, file)).metadata()).format;

describe('README', () => {
  let readme: string;
  let apiDoc: string;
  before(async () => {
    readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
    apiDoc = await readFile(path.join(repoRoot, 'docs', 'api.md'), 'utf8');
  });

  test('is for users: at most 200 lines, no dates, issue numbers or session history', () => {
    const lines = readme.split('\n');
    assert.ok(lines.length <= 200, `${lines.length} lines`);
    assert.deepEqual(lines.filter((l) => /\b20\d\d-\d\d-\d\d\b|\bissue \d+|\(before issue|\bstop \d+\b|\bsession\b/i.test(l)), []);
    // the first lines are the two commands
    assert.match(lines.slice(0, 6).join('\n'), /npm run setup && npm start[\s\S]*npm test/);
  });

  test('the "Try it" block runs on a fresh start and writes the three results', async () => {
    const [script] = blocks(readme, '## Try it', 'sh');
    assert.ok(script && script.includes('/readyz'), 'the block waits for /readyz');
    await rm(path.join(repoRoot, 'out'), { recursive: true, force: true });
    const port = 19000 + Math.floor(Math.random() * 900);
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: repoRoot, detached: true, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d) => { output += String(d); });
    child.stderr!.on('data', (d) => { output += String(d); });
    try {
      const [code] = await once(child, 'exit');
      assert.equal(code, 0, output);
      assert.deepEqual(await size('out/chelsea-colour.png'), await size('test/fixtures/chelsea-gray.png'));
      assert.deepEqual(await size('out/china-filled.jpg'), await size('test/fixtures/china-small.jpg'));
      assert.equal(await formatOf('out/china-filled.jpg'), 'jpeg', 'a JPEG in, a JPEG out');
      assert.equal(await formatOf('out/chelsea-colour.png'), 'png', 'a PNG in, a PNG out');
      assert.deepEqual(await size('out/sneakers.png'), [256, 256]); // 16 samples of 64 px, 4 columns
      const [tw, th] = await size('public/samples/china-tiny.jpg');
      assert.deepEqual(await size('out/china-x4.jpg'), [4 * tw!, 4 * th!]);
      assert.ok((await size('out/china-pono-maps.png'))[0]! > 300, 'the contact sheet of the PONO maps');
      assert.match(output, /"models"/);
    } finally {
      try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ }
    }
  });

  describe('client snippets against the real server', () => {
    let app: FastifyInstance;
    let base: string;
    let dir: string;
    before(async () => {
      app = await buildReadyApp();
      base = await app.listen({ port: 0, host: '127.0.0.1' });
      dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-clients-'));
      await mkdir(path.join(repoRoot, 'out'), { recursive: true });
    });
    after(async () => { await app.close(); await rm(dir, { recursive: true, force: true }); });

    const run = async (lang: string, file: string, cmd: string) => {
      const [code] = blocks(apiDoc, '## Clients', lang);
      assert.ok(code, `no ${lang} block under ## Clients in docs/api.md`);
      const script = path.join(dir, file);
      await writeFile(script, code.replace(/http:\/\/localhost:8080/g, base));
      // async: the server runs in this process, so a synchronous spawn would block it
      const r = await promisify(execFile)(cmd, [script], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
      return r.stdout;
    };

    test('Python (requests): translate, inpaint, generate', async () => {
      const out = await run('python', 'client.py', '/usr/bin/python3');
      assert.match(out, /^colorize-pono@/m);
      assert.match(out, /^42 4 samples$/m);
      assert.deepEqual(await size('out/py-colour.png'), await size('test/fixtures/chelsea-gray.png'));
      assert.deepEqual(await size('out/py-filled.jpg'), await size('test/fixtures/china-small.jpg'));
    });

    test('JavaScript (fetch): translate, inpaint, generate', async () => {
      const out = await run('js', 'client.mjs', process.execPath);
      assert.match(out, /^colorize-pono@/m);
      assert.match(out, /^42 4 samples$/m);
      assert.deepEqual(await size('out/js-colour.png'), await size('test/fixtures/chelsea-gray.png'));
      assert.deepEqual(await size('out/js-filled.jpg'), await size('test/fixtures/china-small.jpg'));
    });
  });
});
