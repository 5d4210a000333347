/** Colorize panel: choose a photo (or a sample), click colour hints, POST /v1/translate; gray preview, before/after slider. */
import { $, say, api, busy, loadImage, offerExplain, modelName, sampleFile, acceptFiles } from './shared.js';

// --- Colorize -------------------------------------------------------------------------------------
let colorizeFile = null;
/** Colour hints: points in the image's pixels, sent as hint_points to the default colorizer (colorize-pono 3). */
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
  $('colorize-hint-count').textContent = hints.length ? `${hints.length} hint${hints.length > 1 ? 's' : ''}: each colours the region it sits in` : 'no hints: the automatic colours';
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

acceptFiles('colorize', chooseColorize);
$('colorize-slider').addEventListener('input', syncCompare);
window.addEventListener('resize', syncCompare);
$('colorize-run').addEventListener('click', () => busy($('colorize-run'), $('colorize-status'), 'Colorizing…', async () => {
  const form = new FormData();
  form.append('image', colorizeFile, colorizeFile.name);
  if (hints.length) form.append('hint_points', JSON.stringify(hints)); // the default colorizer takes them
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

for (const id of ['colorize-sample', 'colorize-sample-china']) {
  $(id).addEventListener('click', async () => {
    try { await chooseColorize(await sampleFile($(id))); } catch (err) { say($('colorize-status'), `Error: ${err.message}`, true); }
  });
}
