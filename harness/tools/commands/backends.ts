/**
 * `tsa backends [--threads N] [--json] [--rates]`: every backend, whether it works here, and which
 * one is selected; --rates adds each available backend's cost-rule rates (fitted on this device),
 * per precision it runs.
 */
import '../../backends.js';
import { describeCostModel, type CostModel } from '../../core/cost.js';
import { TsaInputError } from '../../core/errors.js';
import { createBackend, probeBackends, type ProbeRow } from '../../registry.js';
import { parseCommandArgs, threadsOption } from '../args.js';
import { formatTable } from '../format.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: { threads: { type: 'string' }, json: { type: 'boolean' }, rates: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(
      'usage: tsa backends [--threads N] [--json] [--rates]\n\nProbes every registered backend (highest priority first), says why each is or is not usable, and which one selectBackend() picks.\n' +
        '--rates: also the cost rule\'s rates of each available backend (calibrated on this device on first use: seconds on a software GPU),\n' +
        "at f32, and at f16 as 'NAME f16' where the backend runs f16 attention.",
    );
    return 0;
  }
  const threads = threadsOption(values.threads);
  const rows = await probeBackends({ threads });
  const chosen = rows.find((r) => r.autoSelect);
  const rates = values.rates ? await costRates(rows, threads) : null;
  if (values.json) {
    console.log(JSON.stringify({ selected: chosen?.name ?? null, backends: rows, ...(rates && { rates: Object.fromEntries(rates) }) }, null, 2));
    return 0;
  }
  console.log(
    formatTable(
      ['backend', 'priority', 'available', 'selected', 'why'],
      rows.map((r) => [r.name, String(r.priority), r.available ? 'yes' : 'no', r === chosen ? '*' : '', r.reason]),
    ),
  );
  if (rates) {
    console.log('\ncost-rule rates:');
    for (const [name, m] of rates) console.log(`  ${name}: ${m ? describeCostModel(m) : 'no cost rule'}`);
  }
  console.log(
    chosen
      ? `\nselected: ${chosen.name}: the highest-priority backend that works here. Force another with --backend NAME.`
      : '\nno backend works here',
  );
  return chosen ? 0 : 1;
}

/**
 * The cost-rule rates of each available backend (null: it has none), at f32 under its name, and
 * at f16 as "NAME f16" where it runs f16 attention (fitted apart: other kernels, other rates).
 */
async function costRates(rows: ProbeRow[], threads: number | undefined): Promise<[string, CostModel | null][]> {
  const out: [string, CostModel | null][] = [];
  for (const row of rows.filter((r) => r.available)) {
    const b = await createBackend(row.name, { threads });
    try {
      if (!b.costRates) {
        out.push([row.name, null]);
        continue;
      }
      out.push([row.name, await b.costRates({ precision: 'f32' })]);
      const f16 = await b.costRates({ precision: 'f16' }).catch((e: unknown) => {
        if (e instanceof TsaInputError && e.inputCode === 'PRECISION') return null;
        throw e;
      });
      if (f16) out.push([`${row.name} f16`, f16]);
    } finally {
      await b.dispose();
    }
  }
  return out;
}
