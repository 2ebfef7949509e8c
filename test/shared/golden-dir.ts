/** Where the golden vectors live for tests: ../shared/golden beside the repository, or $TSA_GOLDEN_DIR. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/shared/golden-dir.ts). */
export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

export function goldenDir(): string {
  return process.env.TSA_GOLDEN_DIR ? resolve(process.env.TSA_GOLDEN_DIR) : resolve(REPO_ROOT, '../shared/golden');
}

/** null when the directory holds a manifest, else what is missing and how to provide it. */
export function goldenDirProblem(dir: string): string | null {
  if (existsSync(join(dir, 'manifest.json'))) return null;
  return (
    `golden directory ${dir} has no manifest.json: the golden vectors are expected in ../shared/golden ` +
    `beside the repository (CI clones shared/ there), or in the directory named by TSA_GOLDEN_DIR`
  );
}

/** The XAttention golden vectors: $TSA_GOLDEN_XATTN_DIR, else golden-xattn beside the golden directory. */
export function goldenXattnDir(): string {
  return process.env.TSA_GOLDEN_XATTN_DIR ? resolve(process.env.TSA_GOLDEN_XATTN_DIR) : resolve(goldenDir(), '../golden-xattn');
}
