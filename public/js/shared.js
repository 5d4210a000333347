/**
 * The try-it page's shared pieces (ES module, no build step): element lookup, the API token, `api` (fetch with
 * the token, problem+json details as errors, one retry after a 503 with Retry-After), `busy` (a button's
 * running state), `loadImage`, "What the network sees" (`offerExplain`: POST /v1/explain under a result) and
 * the sample photos (`sampleFile`). Each panel is its own module (colorize.js, inpaint.js, upscale.js,
 * generate.js) that imports these; adding a panel is adding a file and one import in ../app.js.
 */
export const $ = (id) => document.getElementById(id);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- token and API calls --------------------------------------------------------------------------
const TOKEN_KEY = 'normgen-token';
$('token').value = sessionStorage.getItem(TOKEN_KEY) ?? '';
$('token').addEventListener('input', () => sessionStorage.setItem(TOKEN_KEY, $('token').value.trim()));

export function say(statusEl, text, isError = false) {
  statusEl.textContent = text;
  statusEl.classList.toggle('error', isError);
}

/** fetch with the token; resolves with an ok Response, else throws an Error whose message is the problem's detail. */
export async function api(path, init, statusEl) {
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
export async function busy(button, statusEl, label, work) {
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

export const loadImage = (src) => new Promise((resolve, reject) => {
  const img = new Image();
  img.onload = () => resolve(img);
  img.onerror = () => reject(new Error('this file is not an image the browser can show'));
  img.src = src;
});


// --- What the network sees (POST /v1/explain) ------------------------------------------------------
/** Inputs of the last result of each panel, to ask /v1/explain for the same pass's maps. */
const lastRun = {};
const KIND_WORDS = { pono_mu: 'PONO mean μ', pono_sigma: 'PONO spread σ', pono_dms_beta: 'PONO-DMS shift β', pono_dms_gamma: 'PONO-DMS scale γ', an_layout: 'AN regions', an_sampling: 'AN sampling points' };

/** After a result: remember how to explain it; show the panel; refresh the maps if it is open. */
export function offerExplain(prefix, model, makeBody) {
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
      if (m.caption) img.title = m.caption; // what the map shows, in words
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
/** Wire each panel's "What the network sees" <details> to load its maps when opened. */
export function initExplain(prefixes) {
  for (const prefix of prefixes) {
    $(`${prefix}-explain`).addEventListener('toggle', () => { if ($(`${prefix}-explain`).open) showMaps(prefix); });
  }
}
export const modelName = (res) => (res.headers.get('x-model') ?? '').split('@')[0];

// --- Sample photos (public/samples/): the same paths as a chosen file ----------------------------------
export async function sampleFile(button) {
  const res = await fetch(button.dataset.sample);
  if (!res.ok) throw new Error(`could not load the sample (${res.status})`);
  const blob = await res.blob();
  return new File([blob], button.dataset.sample.split('/').pop(), { type: blob.type });
}

/**
 * A panel's photo inputs: the file picker `#PREFIX-file` and, when the page has one, the drop zone `#PREFIX-drop`
 * hand the chosen file to `choose` (async); its error shows in `#PREFIX-status`.
 */
export function acceptFiles(prefix, choose) {
  const take = (file) => { if (file) choose(file).catch((err) => say($(`${prefix}-status`), `Error: ${err.message}`, true)); };
  $(`${prefix}-file`).addEventListener('change', (e) => take(e.target.files[0]));
  const drop = $(`${prefix}-drop`);
  if (!drop) return;
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    take(e.dataTransfer.files[0]);
  });
}
