/** Inpaint panel: paint a mask over the photo (mouse, touch or keyboard), POST /v1/inpaint with the mask as a PNG (white = fill). */
import { $, say, api, busy, loadImage, offerExplain, modelName, sampleFile, acceptFiles } from './shared.js';

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

acceptFiles('inpaint', chooseInpaint);

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

$('inpaint-sample').addEventListener('click', async () => {
  try { await chooseInpaint(await sampleFile($('inpaint-sample'))); } catch (err) { say($('inpaint-status'), `Error: ${err.message}`, true); }
});
