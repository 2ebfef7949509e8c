/** `tsa backends [--threads N] [--json]`: every backend, whether it works here, and which one is selected. */
import '../../backends.js';
import { probeBackends } from '../../registry.js';
import { parseCommandArgs, threadsOption } from '../args.js';
import { formatTable } from '../format.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs({
    args: argv,
    options: { threads: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log('usage: tsa backends [--threads N] [--json]\n\nProbes every registered backend (highest priority first), says why each is or is not usable, and which one selectBackend() picks.');
    return 0;
  }
  const threads = threadsOption(values.threads);
  const rows = await probeBackends({ threads });
  const chosen = rows.find((r) => r.autoSelect);
  if (values.json) {
    console.log(JSON.stringify({ selected: chosen?.name ?? null, backends: rows }, null, 2));
    return 0;
  }
  console.log(
    formatTable(
      ['backend', 'priority', 'available', 'selected', 'why'],
      rows.map((r) => [r.name, String(r.priority), r.available ? 'yes' : 'no', r === chosen ? '*' : '', r.reason]),
    ),
  );
  console.log(
    chosen
      ? `\nselected: ${chosen.name}: the highest-priority backend that works here. Force another with --backend NAME.`
      : '\nno backend works here',
  );
  return chosen ? 0 : 1;
}
