/**
 * Both client packages install as a user would install them and run against the real server (issue 31):
 * `clients/ts` is packed with `npm pack` (its prepack builds `dist/` with types), installed into an empty ES-module
 * project and used from a plain `node` script; `clients/python` is pip-installed from its folder into a fresh
 * virtualenv (Debian's requests and setuptools, no index) and used from a plain `python` script.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { buildReadyApp, repoRoot } from './helper.js';

const run = promisify(execFile);
let app: FastifyInstance;
let base: string;
let dir: string;
before(async () => {
  app = await buildReadyApp();
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  dir = await mkdtemp(path.join(os.tmpdir(), 'normgen-clients-'));
});
after(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

test('the TypeScript client: npm pack, install into an empty project, run an ES module against the server', async () => {
  await run('npm', ['pack', '--pack-destination', dir], { cwd: path.join(repoRoot, 'clients', 'ts'), timeout: 240_000 });
  const tgz = (await readdir(dir)).find((f) => f.endsWith('.tgz'))!;
  const proj = path.join(dir, 'ts-project');
  await run('mkdir', ['-p', proj]);
  await writeFile(path.join(proj, 'package.json'), JSON.stringify({ name: 'try-normgen', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(dir, tgz)], { cwd: proj, timeout: 240_000 });
  await writeFile(path.join(proj, 'main.js'), `
import { readFile } from 'node:fs/promises';
import { createNormgenClient, NormgenError } from '@normgen/client';
const normgen = createNormgenClient({ baseUrl: process.argv[2] });
const colour = await normgen.translate(new Blob([await readFile(process.argv[3])], { type: 'image/png' }));
const { image, seed } = await normgen.generate({ class: 'Sneaker', seed: 42 });
const { models } = await normgen.models();
let problem = '';
try { await normgen.translate(new Blob(['not an image'])); } catch (e) { if (e instanceof NormgenError) problem = e.status + ' ' + e.problem.type; }
console.log(JSON.stringify({ colour: colour.size, sample: image.size, seed, models: models.length, problem }));
`);
  const { stdout } = await run(process.execPath, ['main.js', base, path.join(repoRoot, 'test', 'fixtures', 'chelsea-gray.png')], { cwd: proj, timeout: 120_000 });
  const out = JSON.parse(stdout.trim());
  assert.ok(out.colour > 10_000 && out.sample > 100, stdout);
  assert.equal(out.seed, 42);
  assert.ok(out.models >= 5);
  assert.match(out.problem, /^415 .*not-raster/);
});

test('the Python client: pip install from its folder into a fresh virtualenv, run a script against the server', async () => {
  const venv = path.join(dir, 'venv');
  // the documented offline lines (docs/api.md), run as written
  const doc = await readFile(path.join(repoRoot, 'docs', 'api.md'), 'utf8');
  assert.match(doc, /python3 -m venv --system-site-packages \.venv\n\s*\.venv\/bin\/pip install --no-index --no-build-isolation \.\/clients\/python/);
  await run('/usr/bin/python3', ['-m', 'venv', '--system-site-packages', venv], { timeout: 120_000 });
  await run(path.join(venv, 'bin', 'pip'), ['install', '--no-index', '--no-build-isolation', '--quiet', path.join(repoRoot, 'clients', 'python')], { timeout: 240_000, cwd: dir });
  const script = path.join(dir, 'main.py');
  await writeFile(script, `
import json, sys
from normgen_client import Normgen, NormgenError
ng = Normgen(sys.argv[1])
gray = open(sys.argv[2], "rb").read()
colour = ng.translate(gray)
hinted = ng.translate(gray, model="colorize-hints", hint_points=[{"x": 100, "y": 50, "color": "#3366cc"}])
grid, seed = ng.generate("Bag", seed=7, count=4)
big = ng.upscale(gray, scale=2)
seen = ng.explain("colorize-pono-auto", image=gray)
gen_seen = ng.explain("fashion-an", cls="Bag", seed=7)
try:
    ng.inpaint(gray, b"junk")
    problem = ""
except NormgenError as e:
    problem = f"{e.status} {e.problem['type']}"
print(json.dumps({"colour": len(colour), "hinted": len(hinted), "grid": len(grid), "seed": seed, "models": len(ng.models()), "problem": problem,
                  "big": len(big), "kinds": [m["kind"] for m in seen["maps"]], "gen_kinds": [m["kind"] for m in gen_seen["maps"]], "gen_seed": gen_seen["seed"]}))
`);
  const { stdout } = await run(path.join(venv, 'bin', 'python'), [script, base, path.join(repoRoot, 'test', 'fixtures', 'chelsea-gray.png')], { cwd: dir, timeout: 120_000 });
  const out = JSON.parse(stdout.trim());
  assert.ok(out.colour > 10_000 && out.hinted > 10_000 && out.grid > 100, stdout);
  assert.equal(out.seed, 7);
  assert.ok(out.models >= 5);
  assert.match(out.problem, /^415 /);
  assert.ok(out.big > 10_000, stdout);
  assert.deepEqual(out.kinds, ['pono_mu', 'pono_sigma', 'pono_mu', 'pono_sigma']);
  assert.deepEqual(out.gen_kinds, ['an_layout', 'an_sampling']);
  assert.equal(out.gen_seed, 7);
});
