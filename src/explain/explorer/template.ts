/** The explorer page's HTML shell and style sheet; explorer.js fills it from data.js. */

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

export function pageHtml(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} — lightconv explorer</title>
<link rel="stylesheet" href="style.css">
<link rel="icon" href="data:,">
</head>
<body>
<header class="top">
  <h1>${escape(title)} <span class="sub">layer by layer</span></h1>
  <p class="lede">How this network turned one image into a prediction. The column on the left is the network, top to bottom; each panel shows what one layer computed.
  <b>Click any pixel of a feature map</b> to see the arithmetic that produced it.</p>
</header>
<div id="status" class="status">Running the model in this browser…</div>
<div class="page">
  <nav id="network" aria-label="the network"></nav>
  <main id="content">
    <section id="summary" class="card"></section>
    <section id="explain" class="card"></section>
    <section id="layers"></section>
  </main>
</div>
<script src="data.js"></script>
<script src="explorer.js"></script>
</body>
</html>
`;
}

export const PAGE_CSS = `
:root { --ink: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #f5f7fa; --card: #fff; --accent: #2a6fdb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
header.top { padding: 14px 24px 6px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 22px; }
h1 .sub { font-weight: 400; color: var(--muted); font-size: 16px; }
.lede { margin: 0 0 6px; color: var(--muted); max-width: 70em; }
.status { padding: 6px 24px; background: #fff7d6; border-bottom: 1px solid #eedc8a; }
.status.error { background: #fde2e1; border-color: #f0a8a5; }
.status.done { display: none; }
.page { display: grid; grid-template-columns: 290px 1fr; gap: 16px; padding: 16px 24px; align-items: start; }
nav#network { position: sticky; top: 8px; max-height: calc(100vh - 16px); overflow: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
nav h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 4px 4px 8px; }
.io { text-align: center; color: var(--muted); font-size: 12px; margin: 2px 0; }
.arrow { text-align: center; color: #9aa3b2; line-height: 10px; font-size: 12px; }
.block { border: 1px solid var(--line); border-radius: 6px; padding: 4px 6px; margin: 0 0 2px; background: #fafbfd; }
.block .bname { font-weight: 600; font-size: 12px; display: flex; justify-content: space-between; gap: 6px; }
.block .bname .bmeta { font-weight: 400; color: var(--muted); }
.block a { display: flex; gap: 6px; align-items: center; font-size: 12px; color: var(--ink); text-decoration: none; padding: 1px 2px; border-radius: 3px; }
.block a:hover { background: #e8eefb; }
.block a .lname { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; }
.block a .shape { margin-left: auto; color: var(--muted); font-variant-numeric: tabular-nums; white-space: nowrap; }
.chip { display: inline-block; width: 9px; height: 9px; border-radius: 2px; flex: none; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
.card h2 { margin: 0 0 8px; font-size: 17px; }
.row { display: flex; gap: 20px; flex-wrap: wrap; align-items: flex-start; }
.pic { image-rendering: pixelated; border: 1px solid var(--line); border-radius: 4px; }
.probs { min-width: 280px; flex: 1; }
.prob { display: grid; grid-template-columns: minmax(90px, max-content) 1fr 56px; gap: 8px; align-items: center; margin: 3px 0; }
.prob .bar, .gbar .bar { height: 14px; background: #e9edf3; border-radius: 3px; overflow: hidden; }
.prob .bar span, .gbar .bar span { display: block; height: 100%; background: var(--accent); }
.prob.top .bar span { background: #1b9e5a; }
.note { color: var(--muted); font-size: 13px; max-width: 62em; }
.legend { height: 12px; width: 256px; border-radius: 2px; border: 1px solid var(--line); }
.legend-labels { display: flex; justify-content: space-between; width: 256px; font-size: 12px; color: var(--muted); }
select { font: inherit; padding: 2px 4px; }
.grads { margin-top: 8px; max-height: 420px; overflow: auto; }
.gbar { display: grid; grid-template-columns: minmax(180px, 38%) 1fr 80px; gap: 8px; align-items: center; font-size: 12px; margin: 1px 0; }
.gbar .v { text-align: right; font-variant-numeric: tabular-nums; }
.gbar a { color: var(--ink); text-decoration: none; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.group { margin: 18px 0 6px; font-size: 15px; color: var(--muted); border-bottom: 2px solid var(--line); padding-bottom: 2px; }
article.layer { background: var(--card); border: 1px solid var(--line); border-left: 5px solid #999; border-radius: 8px; padding: 10px 14px; margin-bottom: 12px; scroll-margin-top: 8px; }
article.layer h3 { margin: 0; font-size: 15px; display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
article.layer h3 .no { color: var(--muted); font-weight: 400; }
.kind { font-size: 11px; font-weight: 600; padding: 1px 6px; border-radius: 10px; color: #fff; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 16px; color: var(--muted); font-size: 12.5px; margin: 4px 0; }
.facts b { color: var(--ink); font-weight: 600; }
.explain-text { margin: 6px 0; max-width: 72em; }
.maps { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 6px; }
figure.map { margin: 0; position: relative; text-align: center; }
figure.map canvas { display: block; image-rendering: pixelated; cursor: crosshair; border: 1px solid var(--line); }
figure.map figcaption { font-size: 11px; color: var(--muted); }
.marker { position: absolute; border: 2px solid #e4252b; pointer-events: none; box-shadow: 0 0 0 1px #fff; }
.maps-note { font-size: 12px; color: var(--muted); margin-top: 6px; }
button.more { font: inherit; font-size: 12px; margin-left: 8px; }
.att { display: flex; align-items: flex-end; gap: 1px; height: 64px; border-bottom: 1px solid #9aa3b2; margin-top: 6px; max-width: 900px; }
.att span { flex: 1; background: #d9822b; min-width: 1px; }
.att-caption { font-size: 12px; color: var(--muted); }
.arith { margin-top: 10px; padding: 10px 12px; background: #f7f9fc; border: 1px solid #cfd8e6; border-radius: 6px; }
.arith h4 { margin: 0 0 6px; font-size: 14px; }
.arith table { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
.arith td, .arith th { padding: 1px 8px; text-align: right; border-bottom: 1px solid #e6eaf1; }
.arith th { color: var(--muted); font-weight: 600; }
.arith .steps { margin: 6px 0; padding-left: 20px; }
.arith .result { font-weight: 600; }
.arith .error { color: #9b1c1c; }
.arith pre { white-space: pre-wrap; font-size: 12px; background: #fff; border: 1px solid var(--line); padding: 6px; max-height: 300px; overflow: auto; }
.k-conv { background: #2a6fdb; } .k-depthwise_conv { background: #5b8def; } .k-batchnorm { background: #7a869a; }
.k-activation { background: #1b9e5a; } .k-se, .k-eca, .k-mul { background: #d9822b; } .k-pool, .k-global_pool { background: #8e44ad; }
.k-linear { background: #c0392b; } .k-softmax { background: #e4572e; } .k-add { background: #16a3a3; } .k-flatten, .k-dropout, .k-other { background: #9aa3b2; }
article.layer.k-conv-b { border-left-color: #2a6fdb; }
`;
