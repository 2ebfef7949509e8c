/**
 * `npm run demo`: serves the demo page (index.html, page.mjs beside this file's source) with the
 * built package (dist/, build/) and tinybench (the bench's timer, through the page's import map)
 * on 127.0.0.1, cross-origin isolated, and prints its URL. `--port N` picks the port (default: any free one).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { serveStatic, type StaticSite } from './static.js';

/** The repository root: the nearest folder above this module (dist/harness/tools/demo/serve.js, or its source) with a package.json. */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = dirname(dir);
  }
  return dir;
}
const ROOT = repositoryRoot();

export const DEMO_SITE: StaticSite = {
  files: {
    '/index.html': join(ROOT, 'harness/tools/demo/index.html'),
    '/page.mjs': join(ROOT, 'harness/tools/demo/page.mjs'),
  },
  dirs: {
    dist: join(ROOT, 'dist'),
    build: join(ROOT, 'build'),
    tinybench: join(ROOT, 'node_modules/tinybench/dist'),
  },
};

export function startDemoServer(port = 0): ReturnType<typeof serveStatic> {
  return serveStatic(DEMO_SITE, '127.0.0.1', port);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer in [0, 65535], got '${values.port}'`);
    process.exit(2);
  }
  const { origin } = await startDemoServer(port);
  console.log(`token-sparse-attention demo: ${origin}/`);
  console.log(`autorun example: ${origin}/?autorun=1&backend=wasm&lengths=1024,2048`);
}
