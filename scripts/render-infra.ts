/**
 * Render and validate the deployment manifests under `infra/`.
 *
 *   npx tsx scripts/render-infra.ts            render every target, validate, print a summary (exit 1 on errors)
 *   npx tsx scripts/render-infra.ts gpu        print one rendered target as YAML (cpu | gpu | kserve | cloudrun)
 *
 * Rendering: `kubectl kustomize` where kubectl is installed; otherwise a small renderer of our own over the
 * `yaml` package that implements exactly the kustomize features our kustomizations use (resources, images,
 * JSON 6902 patches, applied with `fast-json-patch`) and refuses any other field (so it can never render
 * silently wrong). Where kubectl is
 * present, the test suite checks both renderers give the same objects.
 * Validation: ajv against the JSON schemas vendored in `infra/schemas/` (written for this project).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import jsonpatch, { type Operation } from 'fast-json-patch';
import YAML from 'yaml';

export const infraDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'infra');

/** A rendered Kubernetes object (parsed YAML). */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };

/** Kustomize targets (folders with a kustomization.yaml) and plain manifest files, by short name. */
export const targets = {
  cpu: { kustomize: 'overlays/cpu' },
  gpu: { kustomize: 'overlays/gpu' },
  kserve: { kustomize: 'kserve' },
  cloudrun: { files: ['cloudrun/service.yaml', 'cloudrun/service-gpu.yaml'] },
  training: { files: ['training/volumes.yaml', 'training/pytorchjob.yaml', 'training/job.yaml'] },
} as const;

/** Parse every document of a YAML file. Throws on a YAML syntax error (with the file name). */
export function readYaml(file: string): unknown[] {
  const docs = YAML.parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of docs) if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
  return docs.map((d) => d.toJS()).filter((d) => d !== null);
}

/** `kubectl kustomize <dir>` as objects, or null when kubectl is not installed. Throws when kustomize fails. */
export function renderWithKubectl(dir: string): Manifest[] | null {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') return null;
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as Manifest);
}

const KNOWN_KEYS = new Set(['apiVersion', 'kind', 'resources', 'images', 'patches']);

/**
 * Our fallback renderer: resources (files or folders with their own kustomization), `images`
 * (name → newName:newTag on every `containers[].image`), then `patches` (inline JSON 6902 with a target
 * kind/name/group, applied by `fast-json-patch` with validation). Throws on any other kustomization field, a
 * patch that matches nothing, or an operation that is invalid or whose path does not resolve (JsonPatchError).
 */
export function renderFallback(dir: string): Manifest[] {
  const k = readYaml(path.join(dir, 'kustomization.yaml'))[0] as Record<string, unknown>;
  for (const key of Object.keys(k)) if (!KNOWN_KEYS.has(key)) throw new Error(`${dir}: kustomization field "${key}" is not supported by the fallback renderer`);
  const out: Manifest[] = [];
  for (const res of (k.resources as string[]) ?? []) {
    const p = path.join(dir, res);
    out.push(...(statSync(p).isDirectory() ? renderFallback(p) : (readYaml(p) as Manifest[])));
  }
  for (const img of (k.images as { name: string; newName?: string; newTag?: string }[]) ?? []) setImages(out, img);
  for (const patch of (k.patches as { target: { kind: string; name: string; group?: string }; patch: string }[]) ?? []) {
    const hits = out.filter((m) => m.kind === patch.target.kind && m.metadata.name === patch.target.name
      && (patch.target.group === undefined || m.apiVersion.split('/')[0] === patch.target.group));
    if (!hits.length) throw new Error(`${dir}: patch target ${patch.target.kind}/${patch.target.name} matches nothing`);
    const ops = YAML.parse(patch.patch) as Operation[];
    for (const m of hits) jsonpatch.applyPatch(m, ops, true);
  }
  return out;
}

/** Split an image reference into name and tag/digest suffix (`repo/name:tag` → [`repo/name`, `:tag`]). */
function splitImage(ref: string): [string, string] {
  const at = ref.indexOf('@');
  if (at >= 0) return [ref.slice(0, at), ref.slice(at)];
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon)] : [ref, ''];
}

/** kustomize's images transformer over every `containers` / `initContainers` list, at any depth. */
function setImages(node: unknown, img: { name: string; newName?: string; newTag?: string }): void {
  if (Array.isArray(node)) { for (const n of node) setImages(n, img); return; }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if ((key === 'containers' || key === 'initContainers') && Array.isArray(value)) {
      for (const c of value as { image?: string }[]) {
        if (typeof c.image !== 'string') continue;
        const [name, suffix] = splitImage(c.image);
        if (name === img.name) c.image = (img.newName ?? name) + (img.newTag !== undefined ? `:${img.newTag}` : suffix);
      }
    }
    setImages(value, img);
  }
}

/** Render one target: kubectl when present, else the fallback. Plain manifest targets are just parsed. */
export function render(name: keyof typeof targets): { objects: Manifest[]; renderer: 'kubectl' | 'fallback' | 'plain' } {
  const t = targets[name];
  if ('files' in t) return { objects: t.files.flatMap((f) => readYaml(path.join(infraDir, f)) as Manifest[]), renderer: 'plain' };
  const dir = path.join(infraDir, t.kustomize);
  const viaKubectl = renderWithKubectl(dir);
  return viaKubectl ? { objects: viaKubectl, renderer: 'kubectl' } : { objects: renderFallback(dir), renderer: 'fallback' };
}

/** ajv with every schema in infra/schemas/ registered by its $id. */
export function schemas(): { knative: ValidateFunction; cloudrun: ValidateFunction; kserve: ValidateFunction; training: ValidateFunction; kustomization: ValidateFunction } {
  const ajv = new Ajv({ allErrors: true, strictSchema: true, strictTypes: false, strictTuples: false, strictRequired: false, allowUnionTypes: true });
  const dir = path.join(infraDir, 'schemas');
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) ajv.addSchema(JSON.parse(readFileSync(path.join(dir, f), 'utf8')));
  const get = (id: string) => ajv.getSchema(id) ?? (() => { throw new Error(`schema ${id} missing`); })();
  return { knative: get('knative-service.json'), cloudrun: get('cloudrun-service.json'), kserve: get('kserve-inferenceservice.json'), training: get('training.json'), kustomization: get('kustomization.json') };
}

/** Schema errors of a rendered object of a target (an empty list when valid). */
export function validate(v: ReturnType<typeof schemas>, target: keyof typeof targets, obj: unknown): ErrorObject[] {
  const fn = target === 'cloudrun' ? v.cloudrun : target === 'kserve' ? v.kserve : target === 'training' ? v.training : v.knative;
  return fn(obj) ? [] : [...(fn.errors ?? [])];
}

/** Every kustomization.yaml under infra/ (relative paths). */
export function kustomizationFiles(dir = infraDir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'schemas' ? [] : kustomizationFiles(p);
    return e.name === 'kustomization.yaml' ? [path.relative(infraDir, p)] : [];
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const which = process.argv[2] as keyof typeof targets | undefined;
  if (which) {
    if (!(which in targets)) { console.error(`unknown target ${which}; one of ${Object.keys(targets).join(', ')}`); process.exit(2); }
    process.stdout.write(render(which).objects.map((o) => YAML.stringify(o)).join('---\n'));
  } else {
    const v = schemas();
    let bad = 0;
    for (const f of kustomizationFiles()) {
      const ok = v.kustomization(readYaml(path.join(infraDir, f))[0]);
      if (!ok) bad++;
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${f}${ok ? '' : ` ${JSON.stringify(v.kustomization.errors)}`}`);
    }
    for (const name of Object.keys(targets) as (keyof typeof targets)[]) {
      const { objects, renderer } = render(name);
      for (const o of objects) {
        const errors = validate(v, name, o);
        if (errors.length) bad++;
        console.log(`${errors.length ? 'FAIL' : 'ok  '} ${name} (${renderer}) ${o.kind}/${o.metadata.name}${errors.length ? ` ${JSON.stringify(errors)}` : ''}`);
      }
    }
    process.exit(bad ? 1 : 0);
  }
}
