/** `tsa conformance <dir> [--backend NAME] [--threads N] [--precision f32|f16]`: golden (or golden-xattn) conformance, one row per case x backend x stage. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import '../../backends.js';
import { checkBackendNames, parseCommandArgs, threadsOption, UsageError } from '../args.js';
import { runConformance } from '../conformance.js';
import { XATTN_MANIFEST } from '../golden-xattn.js';
import { createBackend, probeBackends } from '../../registry.js';
import type { Backend } from '../../core/interface.js';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs({
    args: argv,
    allowPositionals: true,
    options: { backend: { type: 'string' }, threads: { type: 'string' }, precision: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(
      'usage: tsa conformance <golden-dir> [--backend NAME] [--threads N] [--precision f32|f16]\n\n' +
        'Runs every stage of every available backend (or only --backend NAME; an unavailable one is an error)\n' +
        'on every case of a directory in the format of shared/golden, and exits 1 on any mismatch.\n' +
        'A directory in the format of shared/golden-xattn (xattn_manifest.json, naming the golden directory\n' +
        'of its inputs and TSA indices) checks the XAttention stages and the composed pipeline instead.\n' +
        '--precision f16: every call asks for f16 attention; outputs are held to the f16 contract (README\n' +
        '"Precision"), indices and keep counts stay exact; a backend without f16 fails with PRECISION.',
    );
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(positionals.length === 0 ? 'needs one golden directory (tsa conformance <golden-dir>)' : `takes one golden directory, got ${positionals.length}: ${positionals.join(' ')}`);
  }
  if (!existsSync(join(positionals[0]!, 'manifest.json')) && !existsSync(join(positionals[0]!, XATTN_MANIFEST))) {
    throw new UsageError(`'${positionals[0]}' is not a golden directory: it has no manifest.json (nor ${XATTN_MANIFEST})`);
  }
  const threads = threadsOption(values.threads);
  const precision = values.precision ?? 'f32';
  if (precision !== 'f32' && precision !== 'f16') throw new UsageError(`--precision must be f32 or f16, got '${precision}'`);
  checkBackendNames(values.backend);
  const backends: Backend[] = [];
  // Only the WebGPU backend computes in f16: it is the default backend of --precision f16.
  const only = values.backend ?? (precision === 'f16' ? 'webgpu' : undefined);
  if (only) {
    backends.push(await createBackend(only, { threads, costRule: false }));
  } else {
    for (const row of await probeBackends({ threads })) {
      if (row.available) backends.push(await createBackend(row.name, { threads, costRule: false }));
      else console.log(`skipping backend ${row.name}: ${row.reason}`);
    }
  }
  let failures = 0;
  console.log(['result', 'case', 'backend', 'stage', 'tau', 'ms', 'detail'].join('\t'));
  try {
    const rows = await runConformance(positionals[0]!, backends, (r) => {
      if (!r.pass) failures++;
      console.log([r.pass ? 'PASS' : 'FAIL', r.case, r.backend, r.stage, r.tau ?? '-', r.ms.toFixed(0), r.detail].join('\t'));
    }, precision);
    console.log(`\n${rows.length - failures} passed, ${failures} failed`);
  } finally {
    for (const b of backends) await b.dispose();
  }
  return failures === 0 ? 0 : 1;
}
