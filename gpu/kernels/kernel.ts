/**
 * Kernel contracts: one object per WGSL kernel says everything the host and
 * the shader must agree on, and the shader's declarations are generated from
 * it, so binding numbers, parameter offsets and workgroup sizes cannot drift
 * apart (onnxruntime-web's ProgramInfo idea). The Recorder dispatches a
 * kernel by its contract: `rec.dispatch(KERNEL, params, { q, k, out }, groups)`,
 * with parameters and bindings by name, each checked against the contract.
 *
 * The shape of a contract (what a new kernel, e.g. an f16 variant, provides):
 *
 *   {
 *     name: 'attend',                      // dispatch and pipeline label
 *     key: 'attend:16.8.4.4.64.32.128.pf.v4',  // pipeline cache key: name plus what the
 *                                          //   source depends on (tiles, precision, ...)
 *     params: [['n', 'u32'], ['scale', 'f32']],  // uniform fields in order: generated
 *                                          //   `struct Params` at binding 0, read as p.n
 *     bindings: [                          // storage arrays at bindings 1, 2, ... in order,
 *       { name: 'q', access: 'read', type: 'vec4<f32>' },   // generated as
 *       { name: 'out', access: 'read_write', type: 'f32' }, //   var<storage, read> q: array<vec4<f32>>
 *     ],
 *     workgroupSize: 256,                  // threads per workgroup (1-D): generated `const WG: u32`
 *     enable: ['f16'],                     // optional WGSL enable directives
 *     source: () => `...`,                 // module-scope WGSL after the declarations: helpers,
 *                                          //   workgroup memory, and the entry point written as
 *                                          //   `@compute @workgroup_size(WG) fn main(...) { ... }`
 *   }
 *
 * `source` is a function so that a contract is cheap to build per dispatch;
 * the WGSL is generated once per `key` (Pipelines).
 */
import { paramsStruct, type ParamFields } from './params.js';

export type BindingAccess = 'read' | 'read_write';
/** Element type of a storage array binding. */
export type BindingType = 'f32' | 'u32' | 'atomic<u32>' | 'vec4<f32>' | 'vec4<u32>' | 'f16' | 'vec4<f16>';

export interface BindingDecl<B extends string = string> {
  name: B;
  access: BindingAccess;
  type: BindingType;
}

export interface Kernel<B extends string = string> {
  name: string;
  key: string;
  params: ParamFields;
  bindings: readonly BindingDecl<B>[];
  workgroupSize: number;
  enable?: readonly string[];
  /** Optional global directives after the enables, e.g. `diagnostic(off, ...)`. */
  directives?: readonly string[];
  source: () => string;
}

/** The binding names of a kernel. */
export type BindingsOf<K> = K extends Kernel<infer B> ? B : never;

/** A read-only / read-write storage binding declaration (shorthands for contracts). */
export const read = <B extends string>(name: B, type: BindingType = 'f32'): BindingDecl<B> => ({ name, access: 'read', type });
export const write = <B extends string>(name: B, type: BindingType = 'f32'): BindingDecl<B> => ({ name, access: 'read_write', type });

/** The full WGSL module of a kernel: enables, Params, bindings, WG, then its source. */
export function kernelWgsl(k: Kernel): string {
  const enables = (k.enable ?? []).map((e) => `enable ${e};\n`).join('') + (k.directives ?? []).map((d) => `${d};\n`).join('');
  const bindings = k.bindings
    .map((b, i) => `@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`)
    .join('\n');
  return `${enables}${paramsStruct(k.params)}${bindings}\nconst WG: u32 = ${k.workgroupSize}u;\n${k.source()}`;
}

/** Compiled pipelines, created once per kernel key and kept. */
export class Pipelines {
  private cache = new Map<string, GPUComputePipeline>();
  private pending = new Map<string, Promise<void>>();

  constructor(private device: GPUDevice) {}

  get(k: Kernel): GPUComputePipeline {
    let p = this.cache.get(k.key);
    if (!p) {
      p = this.device.createComputePipeline(this.descriptor(k));
      this.cache.set(k.key, p);
    }
    return p;
  }

  private descriptor(k: Kernel): GPUComputePipelineDescriptor {
    const module = this.device.createShaderModule({ label: k.key, code: kernelWgsl(k) });
    return { label: k.key, layout: 'auto', compute: { module, entryPoint: 'main' } };
  }

  /**
   * Creates the pipelines of `kernels` not made yet, all at once with createComputePipelineAsync,
   * so that the driver may compile them side by side (an H200 with a cold shader cache: the 18 of
   * an f16 layer in 1.85-2.2 s, against 3.25 s one after another) and a browser's thread does not
   * wait on each. A creation that fails is left to `get`, which reports it as before.
   */
  async prepare(kernels: Iterable<Kernel>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const k of kernels) {
      if (this.cache.has(k.key)) continue;
      let wait = this.pending.get(k.key);
      if (!wait) {
        wait = this.device
          .createComputePipelineAsync(this.descriptor(k))
          .then(
            (p) => {
              if (!this.cache.has(k.key)) this.cache.set(k.key, p);
            },
            () => {},
          )
          .finally(() => this.pending.delete(k.key));
        this.pending.set(k.key, wait);
      }
      waits.push(wait);
    }
    await Promise.all(waits);
  }
}

/** Memoises a contract factory by a string key (tile-shaped kernels). */
export function variants<A, B extends string>(keyOf: (a: A) => string, make: (a: A, key: string) => Kernel<B>): (a: A) => Kernel<B> {
  const made = new Map<string, Kernel<B>>();
  return (a) => {
    const key = keyOf(a);
    let k = made.get(key);
    if (!k) {
      k = make(a, key);
      made.set(key, k);
    }
    return k;
  };
}
