/**
 * probe: reads one element of a caller's buffer and nothing else. Dispatched
 * alone in an error scope, it tells whether the buffer can be used on the
 * backend's device at all (not destroyed, not from another device) when a
 * GPU-resident call failed validation (resident.ts).
 */
import { read, type Kernel } from './kernel.js';

export const PROBE: Kernel<'x'> = {
  name: 'probe',
  key: 'probe',
  params: [['at', 'u32']],
  bindings: [read('x', 'u32')],
  workgroupSize: 1,
  source: () => `
@compute @workgroup_size(WG)
fn main() {
  _ = x[p.at];
}
`,
};
