/**
 * A small static file server for pages that load the browser entry: named files and mounted
 * directories, served cross-origin isolated (COOP/COEP: shared WebAssembly memory for the wasm
 * backend's threads) unless a request asks otherwise. Used by `npm run demo` (serve.ts) and the
 * browser tests.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';

const MIME: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.bin': 'application/octet-stream',
  '.html': 'text/html',
  '.svg': 'image/svg+xml',
};

export const ISOLATION_HEADERS = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } as const;

export interface StaticSite {
  /** URL path -> file, e.g. '/index.html' -> '/repo/harness/tools/demo/index.html'. */
  files: Record<string, string>;
  /** First path segment -> directory, e.g. 'dist' -> '/repo/dist' serves /dist/**. */
  dirs: Record<string, string>;
}

/** The file `path` names in `site`, or null (also for paths that climb out of a directory). */
export function resolveStatic(site: StaticSite, path: string): string | null {
  const isFile = (f: string): boolean => existsSync(f) && statSync(f).isFile();
  const named = site.files[path];
  if (named) return isFile(named) ? named : null;
  const [, top, ...rest] = path.split('/');
  const root = top ? site.dirs[top] : undefined;
  if (!root) return null;
  const candidate = normalize(join(root, ...rest));
  return candidate.startsWith(root + sep) && isFile(candidate) ? candidate : null;
}

/** Writes `file` (or a 404) with `headers` added. */
export function sendStatic(res: ServerResponse, file: string | null, headers: Record<string, string>): void {
  if (!file) {
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' });
    res.end('not found');
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
  res.end(readFileSync(file));
}

/** Serves `site` cross-origin isolated on host:port (0: any free port); resolves with the server and its origin. */
export function serveStatic(site: StaticSite, host = '127.0.0.1', port = 0): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    sendStatic(res, resolveStatic(site, path === '/' ? '/index.html' : path), ISOLATION_HEADERS);
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => done({ server, origin: `http://${host}:${(server.address() as AddressInfo).port}` }));
  });
}
