/** The static module graph of built files, for the browser tests: what a page would load. */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Every module reachable from `entries` by static imports, dynamic imports and
 * new URL('x.js', import.meta.url), and each specifier that is neither relative nor in `bare`
 * (names a page's import map provides) as a problem, e.g. a node: module.
 */
export function importGraph(entries: string[], bare: readonly string[] = []): { files: string[]; problems: string[] } {
  const seen = new Set<string>();
  const problems: string[] = [];
  const queue = [...entries];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    const specifiers = [
      ...text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]/g),
      ...text.matchAll(/new URL\(\s*['"]([^'"]+\.js)['"]/g),
    ].map((m) => m[1]!);
    for (const s of specifiers) {
      if (s.startsWith('.')) queue.push(resolve(dirname(file), s));
      else if (!bare.includes(s)) problems.push(`${file} imports '${s}'`);
    }
  }
  return { files: [...seen], problems };
}
