/**
 * normgen's try-it page: three panels that call the service's own API (same origin):
 * - Colorize: POST /v1/translate with the chosen photo; gray preview, side-by-side and before/after slider.
 * - Inpaint: paint a mask over the photo (mouse, touch or keyboard), POST /v1/inpaint with the photo and
 *   the mask as a PNG (white = fill, black = keep, at the photo's own resolution).
 * - Upscale: POST /v1/upscale with the chosen photo and scale; a before/after slider over the input enlarged
 *   by the browser (pixelated) and the result, at the result's size.
 * - Generate: class names from GET /v1/models, POST /v1/generate (JSON); shows the seed used (X-Seed).
 * Under each result, "What the network sees" (a <details>) asks POST /v1/explain for the same input's PONO
 * moments or AN layouts and shows them with captions (kind, layer, size, range or regions in use).
 * Errors show the problem+json `detail`; a 503 with Retry-After shows "busy, retrying in N s" and retries
 * once. With API_KEYS on the server, the token field (kept in sessionStorage) is sent as a bearer token.
 * No dependencies, no build step.
 */
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- token and API calls --------------------------------------------------------------------------
const TOKEN_KEY = 'normgen-token';
$('token').value = sessionStorage.getItem(TOKEN_KEY) ?? '';
$('token').addEventListener('input', () => sessionStorage.setItem(TOKEN_KEY, $('token').value.trim()));

function say(statusEl, text, isError = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle('error', isError);
}

/** fetch with the token; resolves with an ok Response, else throws an Error whose message is the problem's detail. */
async function api(path, init, statusEl) {
  for (let attempt = 0; ; attempt++) {
    const headers = new Headers(init?.headers ?? {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.set('authorization', `Bearer ${token}`);
    const res = await fetch(path, { ...init, headers });
    if (res.ok) return res;
    let detail = `${res.status} ${res.statusText}`;
    try {
      const problem = await res.json();
      detail = problem.detail ?? problem.title ?? detail;
    } catch { /* not JSON */ }
    const retryAfter = Number(res.headers.get('retry-after'));
    if (res.status === 503 && attempt === 0 && retryAfter > 0) {
      for (let s = Math.ceil(retryAfter); s > 0; s--) {
        say(statusEl, `The server is busy, retrying in ${s} s…`);
        await sleep(1000);
      }
      continue;
    }
    if (res.status === 401) detail += ' — set the API token at the top of the page.';
    throw new Error(detail);
  }
}

/** Run `work` with the button disabled and the status line updated; shows the error's message on failure. */
async function busy(button, statusEl, label, work) {
  button.disabled = true;
  say(statusEl, label);
  try {
    await work();
    say(statusEl, 'Done.');
  } catch (err) {
    say(statusEl, `Error: ${err.message}`, true);
  } finally {
    button.disabled = false;
  }
}

const loadImage = (src) => new Promise((resolve, reject) => {
  const img = new Image();
  img.onload = () => resolve(img);
  img.onerror = () => reject(new Error('this file is not an image the browser can show'));
  img.src = src;
});

// --- What the network sees (POST /v1/explain) ------------------------------------------------------
/** Inputs of the last result of each panel, to ask /v1/explain for the same pass's maps. */
const lastRun = {};
const KIND_WORDS = { pono_mu: 'PONO mean μ', pono_sigma: 'PONO spread σ', an_layout: 'AN regions', an_sampling: 'AN sampling points' };

/** After a result: remember how to explain it; show the panel; refresh the maps if it is open. */
function offerExplain(prefix, model, makeBody) {
  lastRun[prefix] = { model, makeBody, shown: false };
  const details = $(`${prefix}-explain`);
  details.hidden = false;
  $(`${prefix}-maps`).replaceChildren();
  if (details.open) showMaps(prefix);
}

async function showMaps(prefix) {
  const run = lastRun[prefix];
  if (!run || run.shown) return;
  run.shown = true;
  const status = $(`${prefix}-explain-status`);
  say(status, 'Asking the network…');
  try {
    const body = await run.makeBody();
    if (body instanceof FormData) body.append('model', run.model); else body.model = run.model;
    const init = body instanceof FormData ? { method: 'POST', body } : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
    const res = await api('/v1/explain', init, status);
    const doc = await res.json();
    const figs = doc.maps.map((m) => {
      const fig = document.createElement('figure');
      const img = document.createElement('img');
      img.src = `data:image/png;base64,${m.b64_png}`;
      img.alt = `${KIND_WORDS[m.kind] ?? m.kind} of layer ${m.layer}`;
      img.dataset.kind = m.kind;
      const cap = document.createElement('figcaption');
      const detail = m.range ? ` (${m.range[0].toPrecision(3)} … ${m.range[1].toPrecision(3)})`
        : m.regions !== undefined ? ` — ${m.regions} region${m.regions === 1 ? '' : 's'} in use${m.regions === 1 ? ': a flat layout' : ''}`
        : m.points ? ` — ${m.points.length} points` : '';
      cap.textContent = `${KIND_WORDS[m.kind] ?? m.kind}, ${m.layer}, ${m.width}×${m.height}${detail}`;
      fig.append(img, cap);
      return fig;
    });
    $(`${prefix}-maps`).replaceChildren(...figs);
    say(status, `${doc.maps.length} maps of ${doc.model}.`);
  } catch (err) {
    run.shown = false;
    say(status, `Error: ${err.message}`, true);
  }
}
for (const prefix of ['colorize', 'inpaint', 'upscale', 'generate']) {
  $(`${prefix}-explain`).addEventListener('toggle', () => { if ($(`${prefix}-explain`).open) showMaps(prefix); });
}
const modelName = (res) => (res.headers.get('x-model') ?? '').split('@')[0];

// --- Colorize -------------------------------------------------------------------------------------
let colorizeFile = null;
/** Colour hints (issue 29): points in the image's pixels, sent as hint_points to the colorize-hints model. */
let hints = [];
let hintCursor = null;
const hintCanvas = $('colorize-hints');

function drawHints() {
  const img = $('colorize-input');
  hintCanvas.width = img.naturalWidth || 1;
  hintCanvas.height = img.naturalHeight || 1;
  hintCanvas.style.height = `${img.clientHeight}px`;
  const ctx = hintCanvas.getContext('2d');
  ctx.clearRect(0, 0, hintCanvas.width, hintCanvas.height);
  const r = Math.max(3, Math.round(hintCanvas.width / 120));
  for (const h of hints) {
    ctx.fillStyle = h.color;
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = Math.max(1, r / 3);
    ctx.fillRect(h.x - r, h.y - r, 2 * r + 1, 2 * r + 1);
    ctx.strokeRect(h.x - r, h.y - r, 2 * r + 1, 2 * r + 1);
  }
  if (hintCursor) {
    ctx.strokeStyle = '#f0f';
    ctx.strokeRect(hintCursor.x - 2 * r, hintCursor.y - 2 * r, 4 * r + 1, 4 * r + 1);
  }
  $('colorize-hint-count').textContent = hints.length ? `${hints.length} hint${hints.length > 1 ? 's' : ''}: colorize-hints will follow them` : 'no hints: the automatic colours';
}

function addHint(x, y) {
  const img = $('colorize-input');
  if (!img.naturalWidth) return;
  x = Math.max(0, Math.min(img.naturalWidth - 1, Math.round(x)));
  y = Math.max(0, Math.min(img.naturalHeight - 1, Math.round(y)));
  hints.push({ x, y, color: $('colorize-hint-colour').value, radius: 2 });
  if (hints.length > 1000) hints.shift();
  drawHints();
}

const hintPoint = (e) => {
  const rect = hintCanvas.getBoundingClientRect();
  return [(e.clientX - rect.left) * hintCanvas.width / rect.width, (e.clientY - rect.top) * hintCanvas.height / rect.height];
};
let hintDragging = false;
hintCanvas.addEventListener('pointerdown', (e) => { hintDragging = true; addHint(...hintPoint(e)); });
hintCanvas.addEventListener('pointermove', (e) => { if (hintDragging && e.buttons) addHint(...hintPoint(e)); });
window.addEventListener('pointerup', () => { hintDragging = false; });
hintCanvas.addEventListener('keydown', (e) => {
  const img = $('colorize-input');
  if (!img.naturalWidth) return;
  hintCursor ??= { x: Math.round(img.naturalWidth / 2), y: Math.round(img.naturalHeight / 2) };
  const step = Math.max(2, Math.round(img.naturalWidth / 50));
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (moves[e.key]) {
    e.preventDefault();
    hintCursor = { x: Math.max(0, Math.min(img.naturalWidth - 1, hintCursor.x + moves[e.key][0])), y: Math.max(0, Math.min(img.naturalHeight - 1, hintCursor.y + moves[e.key][1])) };
    drawHints();
  } else if (e.key === ' ') {
    e.preventDefault();
    addHint(hintCursor.x, hintCursor.y);
  }
});
$('colorize-hint-clear').addEventListener('click', () => { hints = []; drawHints(); });
window.addEventListener('resize', drawHints);

async function chooseColorize(file) {
  colorizeFile = file;
  const img = await loadImage(URL.createObjectURL(file));
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < px.data.length; i += 4) {
    const y = Math.round(0.299 * px.data[i] + 0.587 * px.data[i + 1] + 0.114 * px.data[i + 2]); // BT.601, as the service
    px.data[i] = px.data[i + 1] = px.data[i + 2] = y;
  }
  ctx.putImageData(px, 0, 0);
  const gray = canvas.toDataURL('image/png');
  $('colorize-input').src = gray;
  $('colorize-compare-before').src = gray;
  $('colorize-output').removeAttribute('src');
  $('colorize-output-figure').hidden = false;
  hints = [];
  hintCursor = null;
  requestAnimationFrame(drawHints);
  $('colorize-compare').hidden = true;
  $('colorize-download').hidden = true;
  $('colorize-run').disabled = false;
  say($('colorize-status'), `${file.name}: ${img.naturalWidth} × ${img.naturalHeight} px. Press Colorize.`);
}

function syncCompare() {
  const before = $('colorize-compare-before');
  $('colorize-compare-output').style.width = `${before.clientWidth}px`;
  $('colorize-compare-after').style.width = `${$('colorize-slider').value}%`;
}

$('colorize-file').addEventListener('change', (e) => { if (e.target.files[0]) chooseColorize(e.target.files[0]).catch((err) => say($('colorize-status'), `Error: ${err.message}`, true)); });
const drop = $('colorize-drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const file = e.dataTransfer.files[0];
  if (file) chooseColorize(file).catch((err) => say($('colorize-status'), `Error: ${err.message}`, true));
});
$('colorize-slider').addEventListener('input', syncCompare);
window.addEventListener('resize', syncCompare);
$('colorize-run').addEventListener('click', () => busy($('colorize-run'), $('colorize-status'), 'Colorizing…', async () => {
  const form = new FormData();
  form.append('image', colorizeFile, colorizeFile.name);
  if (hints.length) {
    form.append('model', 'colorize-hints');
    form.append('hint_points', JSON.stringify(hints));
  }
  const res = await api('/v1/translate', { method: 'POST', body: form }, $('colorize-status'));
  $('colorize-run').dataset.model = res.headers.get('x-model') ?? '';
  $('colorize-run').dataset.hints = res.headers.get('x-hints') ?? '0';
  const url = URL.createObjectURL(await res.blob());
  await loadImage(url);
  $('colorize-output').src = url;
  $('colorize-compare-output').src = url;
  // the result is shown once, in the before/after slider; the input stays visible for more hints
  $('colorize-output-figure').hidden = true;
  $('colorize-compare').hidden = false;
  $('colorize-download').href = url;
  $('colorize-download').hidden = false;
  requestAnimationFrame(syncCompare);
  const file = colorizeFile;
  offerExplain('colorize', modelName(res), async () => { const f = new FormData(); f.append('image', file, file.name); return f; });
}));

// --- Inpaint --------------------------------------------------------------------------------------
let inpaintFile = null;
let strokes = []; // [{ r, points: [[x, y], …] }] in image pixels
let cursor = null; // keyboard brush position, image pixels
const photoCanvas = $('inpaint-photo');
const maskCanvas = $('inpaint-mask');

/** Image pixels per displayed pixel (the canvases are scaled down by CSS on small screens). */
const scale = () => maskCanvas.width / Math.max(1, maskCanvas.getBoundingClientRect().width);
const radius = () => (Number($('inpaint-brush').value) / 2) * scale();

function drawStrokes(ctx, colour) {
  ctx.strokeStyle = ctx.fillStyle = colour;
  ctx.lineCap = ctx.lineJoin = 'round';
  for (const s of strokes) {
    ctx.lineWidth = 2 * s.r;
    ctx.beginPath();
    ctx.arc(s.points[0][0], s.points[0][1], s.r, 0, 2 * Math.PI);
    ctx.fill();
    if (s.points.length > 1) {
      ctx.beginPath();
      ctx.moveTo(...s.points[0]);
      for (const p of s.points.slice(1)) ctx.lineTo(...p);
      ctx.stroke();
    }
  }
}

function redraw() {
  const ctx = maskCanvas.getContext('2d');
  ctx.clearRect(0, 0, maskCanvas.width, maskCanvas.height);
  drawStrokes(ctx, 'rgba(255, 40, 40, 0.55)');
  if (cursor) {
    ctx.strokeStyle = '#ff9f1c';
    ctx.lineWidth = Math.max(2, scale() * 2);
    ctx.beginPath();
    ctx.arc(cursor[0], cursor[1], radius(), 0, 2 * Math.PI);
    ctx.stroke();
  }
  $('inpaint-undo').disabled = $('inpaint-clear').disabled = $('inpaint-run').disabled = strokes.length === 0;
}

/** The mask as a PNG at the photo's resolution: black = keep, white = fill. */
function maskBlob() {
  const c = document.createElement('canvas');
  c.width = maskCanvas.width;
  c.height = maskCanvas.height;
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, c.width, c.height);
  drawStrokes(ctx, '#fff');
  return new Promise((resolve) => c.toBlob(resolve, 'image/png'));
}

$('inpaint-file').addEventListener('change', (e) => { if (e.target.files[0]) chooseInpaint(e.target.files[0]); });

async function chooseInpaint(file) {
  try {
    const img = await loadImage(URL.createObjectURL(file));
    inpaintFile = file;
    for (const c of [photoCanvas, maskCanvas]) { c.width = img.naturalWidth; c.height = img.naturalHeight; }
    photoCanvas.getContext('2d').drawImage(img, 0, 0);
    strokes = [];
    cursor = null;
    $('inpaint-painter').hidden = false;
    $('inpaint-output').removeAttribute('src');
    $('inpaint-download').hidden = true;
    redraw();
    say($('inpaint-status'), `${file.name}: ${img.naturalWidth} × ${img.naturalHeight} px. Paint over what should be filled.`);
  } catch (err) {
    say($('inpaint-status'), `Error: ${err.message}`, true);
  }
}

const toImage = (e) => {
  const r = maskCanvas.getBoundingClientRect();
  return [(e.clientX - r.left) * scale(), (e.clientY - r.top) * scale()];
};
let painting = false;
maskCanvas.addEventListener('pointerdown', (e) => {
  painting = true;
  maskCanvas.setPointerCapture(e.pointerId);
  strokes.push({ r: radius(), points: [toImage(e)] });
  redraw();
});
maskCanvas.addEventListener('pointermove', (e) => {
  if (!painting) return;
  strokes[strokes.length - 1].points.push(toImage(e));
  redraw();
});
for (const type of ['pointerup', 'pointercancel']) maskCanvas.addEventListener(type, () => { painting = false; });
maskCanvas.addEventListener('keydown', (e) => {
  const step = (e.shiftKey ? 32 : 8) * scale();
  const move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
  cursor ??= [maskCanvas.width / 2, maskCanvas.height / 2];
  if (move) {
    cursor = [Math.min(maskCanvas.width, Math.max(0, cursor[0] + move[0])), Math.min(maskCanvas.height, Math.max(0, cursor[1] + move[1]))];
    if (e.ctrlKey && strokes.length) strokes[strokes.length - 1].points.push([...cursor]); // Ctrl+arrows: drag the stroke
  } else if (e.key === ' ' || e.key === 'Enter') {
    strokes.push({ r: radius(), points: [[...cursor]] });
  } else {
    return;
  }
  e.preventDefault();
  redraw();
});
maskCanvas.addEventListener('blur', () => { cursor = null; redraw(); });
$('inpaint-brush').addEventListener('input', () => { $('inpaint-brush-value').textContent = $('inpaint-brush').value; redraw(); });
$('inpaint-undo').addEventListener('click', () => { strokes.pop(); redraw(); });
$('inpaint-clear').addEventListener('click', () => { strokes = []; redraw(); });
$('inpaint-run').addEventListener('click', () => busy($('inpaint-run'), $('inpaint-status'), 'Filling…', async () => {
  const form = new FormData();
  form.append('image', inpaintFile, inpaintFile.name);
  form.append('mask', await maskBlob(), 'mask.png');
  const res = await api('/v1/inpaint', { method: 'POST', body: form }, $('inpaint-status'));
  const url = URL.createObjectURL(await res.blob());
  await loadImage(url);
  $('inpaint-output').src = url;
  $('inpaint-download').href = url;
  $('inpaint-download').hidden = false;
  const file = inpaintFile, mask = await maskBlob();
  offerExplain('inpaint', modelName(res), async () => { const f = new FormData(); f.append('image', file, file.name); f.append('mask', mask, 'mask.png'); return f; });
}));

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
$('upscale-file').addEventListener('change', (e) => { if (e.target.files[0]) chooseUpscale(e.target.files[0]).catch((err) => say($('upscale-status'), `Error: ${err.message}`, true)); });
const upDrop = $('upscale-drop');
upDrop.addEventListener('dragover', (e) => { e.preventDefault(); upDrop.classList.add('over'); });
upDrop.addEventListener('dragleave', () => upDrop.classList.remove('over'));
upDrop.addEventListener('drop', (e) => {
  e.preventDefault();
  upDrop.classList.remove('over');
  const file = e.dataTransfer.files[0];
  if (file) chooseUpscale(file).catch((err) => say($('upscale-status'), `Error: ${err.message}`, true));
});
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

// --- Sample photos (public/samples/): the same paths as a chosen file ----------------------------------
async function sampleFile(button) {
  const res = await fetch(button.dataset.sample);
  if (!res.ok) throw new Error(`could not load the sample (${res.status})`);
  const blob = await res.blob();
  return new File([blob], button.dataset.sample.split('/').pop(), { type: blob.type });
}
for (const id of ['colorize-sample', 'colorize-sample-china']) {
  $(id).addEventListener('click', async () => {
    try { await chooseColorize(await sampleFile($(id))); } catch (err) { say($('colorize-status'), `Error: ${err.message}`, true); }
  });
}
$('upscale-sample').addEventListener('click', async () => {
  try { await chooseUpscale(await sampleFile($('upscale-sample'))); } catch (err) { say($('upscale-status'), `Error: ${err.message}`, true); }
});
$('inpaint-sample').addEventListener('click', async () => {
  try { await chooseInpaint(await sampleFile($('inpaint-sample'))); } catch (err) { say($('inpaint-status'), `Error: ${err.message}`, true); }
});
