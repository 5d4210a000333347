/** Upscale panel: POST /v1/upscale with the chosen photo and scale; before/after slider at the result's size. */
import { $, say, api, busy, loadImage, offerExplain, modelName, sampleFile, acceptFiles } from './shared.js';

// --- Upscale --------------------------------------------------------------------------------------
let upscaleFile = null;
async function chooseUpscale(file) {
  const img = await loadImage(URL.createObjectURL(file));
  upscaleFile = file;
  $('upscale-compare').hidden = true;
  $('upscale-download').hidden = true;
  $('upscale-run').disabled = false;
  $('upscale-compare-before').src = img.src;
  say($('upscale-status'), `${file.name}: ${img.naturalWidth} × ${img.naturalHeight} px. Press Upscale.`);
}
/** Both images of the slider at the result's width (or the panel's, if narrower): the input enlarged by the browser. */
function syncUpscale() {
  const out = $('upscale-compare-output');
  const w = Math.min(out.naturalWidth || 0, $('upscale').clientWidth - 32);
  $('upscale-compare-before').style.width = `${w}px`;
  out.style.width = `${w}px`;
  $('upscale-compare-after').style.width = `${$('upscale-slider').value}%`;
}
acceptFiles('upscale', chooseUpscale);
$('upscale-slider').addEventListener('input', syncUpscale);
window.addEventListener('resize', syncUpscale);
$('upscale-run').addEventListener('click', () => busy($('upscale-run'), $('upscale-status'), 'Upscaling…', async () => {
  const form = new FormData();
  form.append('image', upscaleFile, upscaleFile.name);
  form.append('scale', $('upscale-scale').value);
  const res = await api('/v1/upscale', { method: 'POST', body: form }, $('upscale-status'));
  $('upscale-run').dataset.model = res.headers.get('x-model') ?? '';
  const url = URL.createObjectURL(await res.blob());
  const out = await loadImage(url);
  $('upscale-compare-output').src = url;
  // the input is shown at the result's size (enlarged by the browser, pixelated), so the two line up
  $('upscale-compare').hidden = false;
  $('upscale-compare').dataset.size = `${out.naturalWidth}x${out.naturalHeight}`;
  $('upscale-download').href = url;
  $('upscale-download').hidden = false;
  requestAnimationFrame(syncUpscale);
  const file = upscaleFile;
  offerExplain('upscale', modelName(res), async () => { const f = new FormData(); f.append('image', file, file.name); return f; });
}));

$('upscale-sample').addEventListener('click', async () => {
  try { await chooseUpscale(await sampleFile($('upscale-sample'))); } catch (err) { say($('upscale-status'), `Error: ${err.message}`, true); }
});
