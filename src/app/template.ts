/** The diagnosis page's HTML shell, style sheet and service worker; app.js fills the page. */

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function appHtml(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} — lightconv</title>
<link rel="stylesheet" href="style.css">
</head>
<body>
<header class="top">
  <div>
    <h1>Image classification <span class="sub">lightconv, in this browser</span></h1>
    <p class="model-line">Model: <b id="model-name">${escape(title)}</b> <span id="model-facts"></span>
      <label class="link-button">load another model…<input id="model-input" type="file" accept=".onnx" hidden></label></p>
  </div>
</header>
<p class="disclaimer" role="note"><b>Research tool — not a diagnostic device.</b> Its output is not a diagnosis and must not guide the care of a patient. Images stay on this computer: the model runs in this browser.</p>
<div id="status" class="status" role="status">Loading the model…</div>
<main class="page">
  <section class="card" id="input-card" aria-labelledby="input-title">
    <h2 id="input-title">1 · Image</h2>
    <div id="drop" class="drop" tabindex="0">
      <p><b>Drop an image here</b> (PNG, JPEG, DICOM…)<br>or an ONNX model to replace the current one</p>
      <div class="buttons">
        <label class="button">Choose image…<input id="file-input" type="file" accept="image/*,.dcm,.onnx" hidden></label>
        <button id="camera-button" type="button" class="button secondary">Use camera</button>
      </div>
    </div>
    <div id="camera" class="camera" hidden>
      <video id="video" autoplay playsinline muted></video>
      <div class="buttons"><button id="capture-button" type="button" class="button">Capture</button><button id="camera-stop" type="button" class="button secondary">Close camera</button></div>
    </div>
    <p id="camera-note" class="note" hidden></p>
    <p id="image-name" class="note"></p>
  </section>
  <section class="card" id="result-card" aria-labelledby="result-title">
    <h2 id="result-title">2 · Result</h2>
    <p id="empty" class="note">Open an image to see the model's answer.</p>
    <div id="result" hidden>
      <div id="prediction" class="prediction"></div>
      <div id="probs" class="probs" aria-label="probability per class"></div>
      <div class="cam-row"><label for="class-select">Show the evidence for</label> <select id="class-select"></select></div>
      <div class="views">
        <figure><canvas id="view-canvas" width="320" height="320"></canvas><figcaption id="view-caption">What the model sees</figcaption></figure>
        <figure><canvas id="cam-canvas" width="320" height="320"></canvas><figcaption>Grad-CAM: the regions that raised this class's score, scaled to this image (the brightest area is the strongest here, not a measure of certainty)
          <span class="legend-row"><span>weaker</span><canvas id="legend" width="256" height="12"></canvas><span>stronger</span></span>
          <span id="cam-note" class="cam-note" hidden></span></figcaption></figure>
      </div>
      <p id="latency" class="latency"></p>
      <p id="preprocess-note" class="note"></p>
    </div>
  </section>
</main>
<div id="error" class="error" role="alert" hidden></div>
<script src="model.js"></script>
<script src="app.js"></script>
</body>
</html>
`;
}

export const APP_CSS = `
:root { --ink: #1f2a37; --muted: #5a6576; --line: #d8dee6; --bg: #f3f6f8; --card: #fff; --accent: #2b6cb0; --top: #1e3a5f; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
header.top { padding: 14px 28px 10px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 21px; font-weight: 600; }
h1 .sub { font-weight: 400; color: var(--muted); font-size: 15px; margin-left: 6px; }
.model-line { margin: 4px 0 0; color: var(--muted); font-size: 14px; }
.model-line b { color: var(--ink); }
.link-button { color: var(--accent); cursor: pointer; margin-left: 10px; text-decoration: underline; }
.disclaimer { margin: 0; padding: 8px 28px; background: #fdf6e3; border-bottom: 1px solid #ecd9a3; color: #5c4813; font-size: 14px; }
.status { padding: 6px 28px; color: var(--muted); font-size: 14px; }
.status.busy::before { content: "⏳ "; }
.page { display: grid; grid-template-columns: minmax(300px, 380px) 1fr; gap: 20px; padding: 8px 28px 28px; align-items: start; }
@media (max-width: 900px) { .page { grid-template-columns: 1fr; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; }
.card h2 { margin: 0 0 12px; font-size: 16px; color: var(--muted); font-weight: 600; letter-spacing: .02em; }
.drop { border: 2px dashed #b8c4d2; border-radius: 10px; padding: 22px 16px; text-align: center; color: var(--muted); background: #f9fbfc; }
.drop.over { border-color: var(--accent); background: #ebf4ff; }
.drop p { margin: 0 0 14px; }
.buttons { display: flex; gap: 10px; justify-content: center; flex-wrap: wrap; }
.button { display: inline-block; font: inherit; font-size: 14px; padding: 7px 16px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
.button.secondary { background: #fff; color: var(--accent); }
.button:disabled { opacity: .5; cursor: default; }
.camera { margin-top: 14px; text-align: center; }
.camera video { width: 100%; max-height: 300px; background: #111; border-radius: 8px; margin-bottom: 8px; }
.note { color: var(--muted); font-size: 13.5px; margin: 10px 0 0; }
.prediction { font-size: 20px; margin: 0 0 12px; }
.prediction b { color: var(--top); }
.probs { max-width: 640px; }
.prob { display: grid; grid-template-columns: minmax(110px, max-content) 1fr 64px; gap: 10px; align-items: center; margin: 5px 0; font-size: 14px; }
.prob .bar { height: 16px; background: #e8edf2; border-radius: 4px; overflow: hidden; }
.prob .bar span { display: block; height: 100%; background: #9fb3c8; }
.prob.top .bar span { background: var(--top); }
.prob.top .name { font-weight: 600; }
.prob .v { text-align: right; font-variant-numeric: tabular-nums; }
.views { display: flex; gap: 20px; flex-wrap: wrap; margin-top: 18px; }
.views figure { margin: 0; }
.views canvas { width: 320px; height: 320px; border: 1px solid var(--line); border-radius: 6px; display: block; background: #eef1f4; }
.views figcaption { font-size: 13.5px; color: var(--muted); margin-top: 6px; max-width: 320px; }
select { font: inherit; font-size: 13.5px; padding: 1px 4px; }
.cam-note { display: block; margin-top: 6px; color: var(--ink); }
.cam-row { margin-top: 18px; font-size: 14px; }
.legend-row { display: flex; align-items: center; gap: 8px; font-size: 12.5px; margin-top: 6px; }
.legend-row canvas { width: 160px; height: 10px; border-radius: 2px; }
.latency { margin: 16px 0 0; padding: 8px 12px; background: #f4f7fa; border-radius: 6px; font-size: 13.5px; font-variant-numeric: tabular-nums; color: var(--muted); }
.latency b { color: var(--ink); font-weight: 600; }
.error { position: fixed; bottom: 18px; left: 50%; transform: translateX(-50%); max-width: 720px; background: #fff1f0; border: 1px solid #e5a5a0; color: #7a1f1a; padding: 10px 16px; border-radius: 8px; box-shadow: 0 4px 14px rgba(0,0,0,.08); }
`;

/**
 * The service worker: the page's files cached on install, then network first (a rewritten
 * folder is seen at once), the cache when the network (or the server) is gone. `version`
 * changes with the files, so an old cache is dropped when the new worker takes over.
 */
export function serviceWorker(files: readonly string[], version: string): string {
  return `const CACHE = ${JSON.stringify(`lightconv-app-${version}`)};
const FILES = ${JSON.stringify(['./', ...files.map((f) => `./${f}`)])};
self.addEventListener('install', (e) => { e.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting())); });
self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k.startsWith('lightconv-app-') && k !== CACHE).map((k) => caches.delete(k)))).then(() => self.clients.claim()));
});
self.addEventListener('fetch', (e) => {
  if (e.request.method !== 'GET' || new URL(e.request.url).origin !== location.origin) return;
  e.respondWith(fetch(e.request).then((r) => {
    if (r.ok) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(e.request, copy)); }
    return r;
  }).catch(() => caches.open(CACHE).then((c) => c.match(e.request, { ignoreSearch: true })).then((r) => r || new Response('offline, and not cached', { status: 504 }))));
});
`;
}
