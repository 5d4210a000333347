/** Generate panel: class names from GET /v1/models, POST /v1/generate (JSON); shows the seed used (X-Seed). */
import { $, say, api, busy, loadImage, offerExplain, modelName } from './shared.js';

// --- Generate -------------------------------------------------------------------------------------
async function loadClasses() {
  const res = await api('/v1/models', {}, $('generate-status'));
  const { models } = await res.json();
  const gens = models.filter((m) => m.task === 'generate' && m.classes);
  const model = gens.find((m) => m.default) ?? gens[0];
  if (!model) throw new Error('no generator model is installed');
  for (const select of [$('generate-class'), $('generate-to')]) {
    for (const [i, name] of model.classes.entries()) select.add(new Option(name, String(i)));
  }
  $('generate-run').disabled = false;
}
loadClasses().catch((err) => say($('generate-status'), `Error: ${err.message}`, true));
$('generate-random').addEventListener('click', () => { $('generate-seed').value = String(crypto.getRandomValues(new Uint32Array(1))[0]); });
$('generate-run').addEventListener('click', () => busy($('generate-run'), $('generate-status'), 'Generating…', async () => {
  const body = { class: Number($('generate-class').value), size: Number($('generate-size').value) };
  if ($('generate-seed').value !== '') body.seed = Number($('generate-seed').value);
  if ($('generate-to').value !== '') {
    body.interpolate_to = Number($('generate-to').value);
    body.steps = Number($('generate-steps').value);
  } else {
    body.count = Number($('generate-count').value);
  }
  const res = await api('/v1/generate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, $('generate-status'));
  const url = URL.createObjectURL(await res.blob());
  await loadImage(url);
  $('generate-output').src = url;
  $('generate-seed-used').textContent = `seed ${res.headers.get('x-seed')} — the same seed and settings give the same picture`;
  // the maps of the first sample (class and seed as sent)
  const explainBody = { class: body.class, seed: Number(res.headers.get('x-seed')) };
  offerExplain('generate', modelName(res), async () => ({ ...explainBody }));
}));
