/**
 * convert: dst[i] = src[i] for i < count, between f16 and f32 (the
 * GPU-resident entry's f16 inputs and outputs, resident.ts). f16 -> f32 is
 * exact; f32 -> f16 rounds to nearest. Flat arrays, a grid-stride loop over
 * at most 65535 workgroups of 256.
 */
import { read, write, type BindingType, type Kernel } from './kernel.js';

function convertKernel(name: string, from: BindingType, to: BindingType, cast: string): Kernel<'src' | 'dst'> {
  return {
    name,
    key: name,
    params: [
      ['count', 'u32'],
      ['stride', 'u32'],
    ],
    bindings: [read('src', from), write('dst', to)],
    workgroupSize: 256,
    enable: ['f16'],
    source: () => `
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  for (var i = gid.x; i < p.count; i = i + p.stride) { dst[i] = ${cast}(src[i]); }
}
`,
  };
}

export const F16_TO_F32 = convertKernel('f16-to-f32', 'f16', 'f32', 'f32');
export const F32_TO_F16 = convertKernel('f32-to-f16', 'f32', 'f16', 'f16');

/** Workgroups of a convert dispatch over `count` elements, and its grid stride. */
export function convertGrid(count: number): { groups: number; stride: number } {
  const groups = Math.max(1, Math.min(65535, Math.ceil(count / 256)));
  return { groups, stride: groups * 256 };
}
