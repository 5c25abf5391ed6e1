// The page's script, bundled by esbuild or Vite from the installed package with no configuration.
import { compute } from './compute.js';

const fetchBytes = async (name) => {
  const r = await fetch(`/fixture/${name}`);
  if (!r.ok) throw new Error(`${name}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};
compute(fetchBytes).then(
  (r) => (window.__result = { ...r, isolated: crossOriginIsolated }),
  (e) => (window.__result = { error: String(e && e.stack ? e.stack : e) }),
);
