import { LightconvError } from '../core/errors.js';

/**
 * The script of a page that the CLI writes (the explorer, the diagnosis app): the engine and the
 * page in one classic script (an IIFE, not a module, so a page also works opened from file://,
 * where Chromium refuses module scripts). A build ships it prebuilt beside the library's chunks
 * (tsup.config.ts); in a source checkout it is bundled here from its entry with esbuild, through
 * the same browser-platform plugin as the build (scripts/browser-platform.ts: `.browser.ts`
 * siblings swapped in, Node built-ins stubbed), so development pages match the shipped ones.
 */

const scripts = new Map<string, Promise<string>>();

/**
 * `built`: the prebuilt bundle's URL (resolved beside the calling module, i.e. dist/ once built);
 * `source`: the page's entry (.ts) for the fallback. Cached per bundle; a failure is not cached.
 */
export function pageScript(what: string, built: URL, source: URL): Promise<string> {
  const key = built.href;
  let script = scripts.get(key);
  if (script) return script;
  script = (async () => {
    const { readFile } = await import('node:fs/promises');
    const { existsSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const builtPath = fileURLToPath(built);
    if (existsSync(builtPath)) return readFile(builtPath, 'utf8');
    const sourcePath = fileURLToPath(source);
    if (!existsSync(sourcePath)) throw new LightconvError(`${what}: neither the built page script (${builtPath}) nor its source (${sourcePath}) is there`);
    let esbuild: typeof import('esbuild');
    try {
      // A computed name, so no bundler of this library tries to bundle esbuild itself.
      const name = 'esbuild';
      esbuild = (await import(/* @vite-ignore */ name)) as typeof import('esbuild');
    } catch {
      throw new LightconvError(`${what}: bundling the page from ${sourcePath} needs esbuild (a dependency of tsup); install the dev dependencies or use a build that ships ${builtPath.split(/[\\/]/).pop()}`);
    }
    // The build's plugin, from the checkout this source sits in (only a checkout has the source).
    const pluginFile = new URL('../../scripts/browser-platform.ts', import.meta.url);
    const plugins = existsSync(fileURLToPath(pluginFile))
      ? [((await import(/* @vite-ignore */ pluginFile.href)) as { browserPlatform(nodeOnly: readonly string[]): import('esbuild').Plugin }).browserPlatform(['cli-progress', 'pngjs'])]
      : [];
    const r = await esbuild.build({
      entryPoints: [sourcePath],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      write: false,
      // Without the plugin: Node-only modules are imported lazily by code a page never calls.
      external: plugins.length ? ['gpu.js'] : ['node:*', 'gpu.js'],
      plugins,
      logLevel: 'silent',
      legalComments: 'none',
    });
    return r.outputFiles[0]!.text;
  })();
  script.catch(() => scripts.delete(key));
  scripts.set(key, script);
  return script;
}
