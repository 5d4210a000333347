/**
 * Deployment manifests (`infra/`): every kustomization renders (kubectl kustomize where installed, our
 * fallback renderer otherwise, and both agree where both run), every rendered object and the Cloud Run
 * YAML validate against the vendored JSON schemas with ajv, the deployment facts the service relies on
 * hold (scale to zero, probes on /readyz, the image's port, one GPU only in the GPU overlay), and the
 * schemas reject broken manifests (so a pass means something).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { infraDir, kustomizationFiles, readYaml, render, renderFallback, renderWithKubectl, schemas, targets, validate, type Manifest } from '../scripts/render-infra.js';
import { repoRoot } from './helper.js';

const v = schemas();
type Container = { name: string; image: string; ports: { containerPort: number }[]; env?: { name: string; value: string }[]; resources?: { limits?: Record<string, string> }; startupProbe?: { httpGet?: { path: string } }; readinessProbe?: { httpGet?: { path: string } } };
const knativeSpec = (m: Manifest) => (m as unknown as { spec: { template: { metadata: { annotations: Record<string, string> }; spec: { containerConcurrency: number; containers: Container[] } } } }).spec.template;
const clone = <T>(x: T): T => structuredClone(x);
const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const exposed = Number(/^EXPOSE (\d+)/m.exec(dockerfile)?.[1]);

describe('infra manifests', () => {
  test('every kustomization.yaml is valid', () => {
    const files = kustomizationFiles();
    assert.deepEqual(files.sort(), ['base/kustomization.yaml', 'kserve/kustomization.yaml', 'overlays/cpu/kustomization.yaml', 'overlays/gpu/kustomization.yaml']);
    for (const f of files) assert.ok(v.kustomization(readYaml(path.join(infraDir, f))[0]), `${f}: ${JSON.stringify(v.kustomization.errors)}`);
  });

  for (const name of ['cpu', 'gpu', 'kserve'] as const) {
    test(`${name}: the fallback renderer gives what kubectl kustomize gives`, (t) => {
      const dir = path.join(infraDir, targets[name].kustomize);
      const viaKubectl = renderWithKubectl(dir);
      if (!viaKubectl) { t.skip('kubectl is not installed: the fallback renderer is the only one'); return; }
      assert.deepEqual(renderFallback(dir), viaKubectl);
    });
  }

  for (const name of Object.keys(targets) as (keyof typeof targets)[]) {
    test(`${name}: every rendered object validates against its schema`, () => {
      const { objects } = render(name);
      assert.ok(objects.length >= 1);
      for (const o of objects) assert.deepEqual(validate(v, name, o), [], `${o.kind}/${o.metadata.name}`);
    });
  }

  test('Knative overlays: scale to zero, probes on /readyz, the image port, one GPU only in the GPU overlay', () => {
    assert.equal(exposed, 8080);
    assert.match(dockerfile, /HEALTHCHECK[\s\S]*\/readyz/);
    for (const name of ['cpu', 'gpu'] as const) {
      const [svc, ...rest] = render(name).objects;
      assert.equal(rest.length, 0);
      const tpl = knativeSpec(svc!);
      assert.equal(tpl.metadata.annotations['autoscaling.knative.dev/min-scale'], '0', name);
      assert.ok(Number(tpl.metadata.annotations['autoscaling.knative.dev/max-scale']) >= 1, name);
      assert.ok(tpl.spec.containerConcurrency > 0, name);
      const c = tpl.spec.containers[0]!;
      assert.equal(c.ports[0]!.containerPort, exposed, name);
      assert.equal(c.startupProbe?.httpGet?.path, '/readyz', name);
      assert.equal(c.readinessProbe?.httpGet?.path, '/readyz', name);
      const names = (c.env ?? []).map((e) => e.name);
      assert.equal(new Set(names).size, names.length, `${name}: duplicate env ${names}`);
      assert.ok(!names.includes('PORT'), 'PORT is Knative\'s to set');
    }
    const cpu = knativeSpec(render('cpu').objects[0]!).spec.containers[0]!;
    const gpu = knativeSpec(render('gpu').objects[0]!).spec.containers[0]!;
    assert.equal(cpu.resources?.limits?.['nvidia.com/gpu'], undefined);
    assert.equal(gpu.resources?.limits?.['nvidia.com/gpu'], '1');
    assert.equal(gpu.env?.find((e) => e.name === 'EXECUTION_PROVIDERS')?.value, 'cuda,cpu');
    assert.match(gpu.image, /:[\w.-]*cuda$/);
    assert.doesNotMatch(cpu.image, /cuda/);
  });

  test('KServe and Cloud Run: scale to zero and the /readyz startup probe', () => {
    const isvc = render('kserve').objects[0] as unknown as { spec: { predictor: { minReplicas: number; containers: Container[] } } };
    assert.equal(isvc.spec.predictor.minReplicas, 0);
    assert.equal(isvc.spec.predictor.containers[0]!.startupProbe?.httpGet?.path, '/readyz');
    assert.equal(isvc.spec.predictor.containers[0]!.ports[0]!.containerPort, exposed);
    for (const svc of render('cloudrun').objects) {
      const tpl = knativeSpec(svc);
      assert.equal(tpl.metadata.annotations['autoscaling.knative.dev/minScale'], '0');
      assert.equal(tpl.spec.containers[0]!.startupProbe?.httpGet?.path, '/readyz');
    }
  });

  test('the schemas reject broken manifests', () => {
    const svc = render('gpu').objects[0]!;
    const broken: [string, (m: any) => void][] = [
      ['misspelt containerConcurrency', (m) => { m.spec.template.spec.containerConcurency = 4; }],
      ['no image', (m) => { delete m.spec.template.spec.containers[0].image; }],
      ['min-scale not a number', (m) => { m.spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'] = 'zero'; }],
      ['probe without a handler', (m) => { m.spec.template.spec.containers[0].startupProbe = { periodSeconds: 1 }; }],
      ['bad quantity', (m) => { m.spec.template.spec.containers[0].resources.limits.memory = '16 GB'; }],
      ['two ports', (m) => { m.spec.template.spec.containers[0].ports.push({ containerPort: 9090 }); }],
    ];
    for (const [what, mutate] of broken) {
      const m = clone(svc); mutate(m);
      assert.notDeepEqual(validate(v, 'gpu', m), [], what);
    }
    const [, runGpu] = render('cloudrun').objects;
    const runBroken: [string, (m: any) => void][] = [
      ['GPU with CPU throttling', (m) => { m.spec.template.metadata.annotations['run.googleapis.com/cpu-throttling'] = 'true'; }],
      ['GPU with 2 CPU', (m) => { m.spec.template.spec.containers[0].resources.limits.cpu = '2'; }],
      ['PORT set by hand', (m) => { m.spec.template.spec.containers[0].env.push({ name: 'PORT', value: '9000' }); }],
    ];
    for (const [what, mutate] of runBroken) {
      const m = clone(runGpu); mutate(m);
      assert.notDeepEqual(validate(v, 'cloudrun', m), [], what);
    }
    const isvc = clone(render('kserve').objects[0]!) as any;
    isvc.spec.predictor.containers[0].name = 'normgen';
    assert.notDeepEqual(validate(v, 'kserve', isvc), []);
  });

  test('training: GPUs per pod = processes per pod, the Job\'s pods = torchrun\'s nodes, the runs volume shared, and the schema rejects broken ones', () => {
    const objs = render('training').objects as any[];
    const byKind = (k: string) => objs.filter((o) => o.kind === k);
    const [ptj] = byKind('PyTorchJob');
    const pod = (t: any) => t.spec.containers[0];
    const nproc = Number(ptj.spec.nprocPerNode);
    for (const role of ['Master', 'Worker']) {
      const c = pod(ptj.spec.pytorchReplicaSpecs[role].template);
      assert.equal(Number(c.resources.limits['nvidia.com/gpu']), nproc, role);
      assert.equal(c.command[0], 'torchrun');
      assert.deepEqual(c.args.slice(0, 4), ['-m', 'trainer', 'colorize', 'train']);
      assert.ok(c.args.includes('--resume') && c.args.includes('cuda'), role);
    }
    assert.equal(ptj.spec.pytorchReplicaSpecs.Master.replicas, 1);
    const job = byKind('Job')[0];
    const svc = byKind('Service')[0];
    const jc = pod(job.spec.template);
    const arg = (name: string) => jc.args[jc.args.indexOf(name) + 1];
    assert.equal(job.spec.completionMode, 'Indexed');
    assert.equal(job.spec.completions, Number(arg('--nnodes')));
    assert.equal(job.spec.parallelism, job.spec.completions);
    assert.equal(Number(jc.resources.limits['nvidia.com/gpu']), Number(arg('--nproc_per_node')));
    assert.equal(svc.spec.clusterIP, 'None');
    assert.equal(job.spec.template.spec.subdomain, svc.metadata.name);
    assert.equal(arg('--rdzv_endpoint'), `${job.metadata.name}-0.${svc.metadata.name}:${svc.spec.ports[0].port}`);
    const claims = new Set(byKind('PersistentVolumeClaim').map((c) => c.metadata.name));
    for (const t of [ptj.spec.pytorchReplicaSpecs.Master.template, job.spec.template]) {
      for (const vol of t.spec.volumes.filter((x: any) => x.persistentVolumeClaim)) assert.ok(claims.has(vol.persistentVolumeClaim.claimName));
    }
    assert.ok(byKind('PersistentVolumeClaim').find((c) => c.metadata.name === 'normgen-runs').spec.accessModes.includes('ReadWriteMany'));
    const broken: [string, any, (m: any) => void][] = [
      ['two masters', ptj, (m) => { m.spec.pytorchReplicaSpecs.Master.replicas = 2; }],
      ['misspelt volumeMount', ptj, (m) => { m.spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].volumeMounts[0].mountPth = '/x'; }],
      ['unknown replica type', ptj, (m) => { m.spec.pytorchReplicaSpecs.Chief = m.spec.pytorchReplicaSpecs.Worker; }],
      ['Job without a template', job, (m) => { delete m.spec.template; }],
      ['bad completion mode', job, (m) => { m.spec.completionMode = 'indexed'; }],
    ];
    for (const [what, obj, mutate] of broken) {
      const m = clone(obj); mutate(m);
      assert.notDeepEqual(validate(v, 'training', m), [], what);
    }
  });

  test('the fallback renderer refuses what it does not implement and patches that do not resolve', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kust-'));
    try {
      writeFileSync(path.join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports: [{port: 80}]\n  labels: {"c/d": 1}\n');
      const kust = (extra: string) => writeFileSync(path.join(dir, 'kustomization.yaml'),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [svc.yaml]\n${extra}`);
      const patch = (ops: string) => kust(`patches:\n  - target: {kind: Service, name: s}\n    patch: '${ops}'\n`);
      kust('namePrefix: x-\n');
      assert.throws(() => renderFallback(dir), /"namePrefix" is not supported/);
      patch('[{"op": "replace", "path": "/spec/missing/x", "value": 1}]');
      assert.throws(() => renderFallback(dir), /path that does not exist/);
      patch('[{"op": "add", "path": "/spec/ports/3", "value": {"port": 81}}]');
      assert.throws(() => renderFallback(dir), /MUST NOT be greater/);
      kust('patches:\n  - target: {kind: Service, name: other}\n    patch: "[]"\n');
      assert.throws(() => renderFallback(dir), /matches nothing/);
      patch('[{"op": "add", "path": "/spec/ports/-", "value": {"port": 81}}, {"op": "replace", "path": "/spec/labels/c~1d", "value": 3}]');
      assert.deepEqual((renderFallback(dir)[0] as any).spec, { ports: [{ port: 80 }, { port: 81 }], labels: { 'c/d': 3 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
