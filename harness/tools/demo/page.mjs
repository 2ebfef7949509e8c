/**
 * The demo page's DOM layer (index.html): lists every backend with why it is (not) usable here,
 * turns the form into URL parameters for sweep.ts, runs the sweep with a progress bar, and shows
 * the bench table (tools/bench-table.ts) and the SVG plot (tools/plot.ts).
 *
 * Automation: `?autorun=1&backend=wasm,webgpu&lengths=512,1024` runs at once, writes the result
 * JSON into <pre id="results"> and sets document.title to 'done' (or 'error: ...').
 */
import { probeBackends } from 'token-sparse-attention';
import { benchTable } from '/dist/harness/tools/bench-table.js';
import { benchSvg } from '/dist/harness/tools/plot.js';
import { DEMO_DEFAULTS, parseDemoParams, runDemoSweep } from '/dist/harness/tools/demo/sweep.js';

const $ = (id) => document.getElementById(id);
const form = $('form');
const params = new URLSearchParams(location.search);

/** One checkbox per backend; unavailable ones are disabled and say why. */
function showBackends(rows, chosen) {
  $('backends').replaceChildren(
    ...rows.map((row) => {
      const line = document.createElement('div');
      const box = Object.assign(document.createElement('input'), { type: 'checkbox', name: 'backend', value: row.name });
      box.checked = chosen.includes(row.name);
      box.disabled = !row.available;
      const label = document.createElement('label');
      label.append(box, ` ${row.name} `);
      const why = document.createElement('span');
      why.className = row.available ? (row.autoSelect ? '' : 'manual') : 'unavailable';
      why.textContent = row.available ? row.reason : `unavailable: ${row.reason}`;
      line.append(label, why);
      return line;
    }),
  );
}

/** The form's settings as the URL parameters sweep.ts reads. */
function formParams() {
  const p = new URLSearchParams();
  p.set('backend', [...form.querySelectorAll('input[name=backend]:checked')].map((b) => b.value).join(','));
  for (const name of ['heads', 'kvHeads', 'headDim', 'inputs', 'lengths', 'coverage']) p.set(name, form.elements[name].value);
  p.set('seed', params.get('seed') ?? DEMO_DEFAULTS.seed);
  return p;
}

async function run(p) {
  const config = parseDemoParams(p);
  $('run').disabled = true;
  $('results').textContent = '';
  try {
    const result = await runDemoSweep(config, (done, total, message) => {
      $('progress').value = done / total;
      $('status').textContent = `${done}/${total} ${message}`;
    });
    $('table').textContent = benchTable(result.records);
    $('plot').innerHTML = benchSvg(result.records, `H=${config.heads} Hkv=${config.kvHeads} D=${config.headDim}`);
    $('results').textContent = JSON.stringify(result, null, 2);
    $('status').textContent = `done: ${result.backends.map((b) => b.description).join('; ')}`;
    return result;
  } finally {
    $('run').disabled = false;
  }
}

function fail(e) {
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  $('status').textContent = message;
  document.title = `error: ${message}`;
}

for (const name of ['heads', 'kvHeads', 'headDim', 'inputs', 'lengths', 'coverage']) form.elements[name].value = params.get(name) ?? DEMO_DEFAULTS[name];
form.addEventListener('submit', (event) => {
  event.preventDefault();
  document.title = 'running';
  run(formParams()).then(() => (document.title = 'done'), fail);
});

try {
  showBackends(await probeBackends(), (params.get('backend') ?? DEMO_DEFAULTS.backend).split(','));
  $('status').textContent = 'ready';
  if (params.get('autorun') === '1') {
    document.title = 'running';
    await run(params);
    document.title = 'done';
  }
} catch (e) {
  fail(e);
}
