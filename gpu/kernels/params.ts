/**
 * Uniform parameters of the kernels: each kernel declares its fields once
 * (name and type); `paramsStruct` writes the WGSL struct and `packParams`
 * the matching bytes, so the two cannot drift apart. Every field is a
 * 4-byte u32 or f32, laid out in declaration order.
 */

export type ParamType = 'u32' | 'f32';
export type ParamFields = readonly (readonly [name: string, type: ParamType])[];

/** `struct Params { ... }` plus the uniform binding at @group(0) @binding(0). */
export function paramsStruct(fields: ParamFields): string {
  const body = fields.map(([n, t]) => `  ${n}: ${t},`).join('\n');
  return `struct Params {\n${body}\n}\n@group(0) @binding(0) var<uniform> p: Params;\n`;
}

/** Uniform buffer bytes for `values` (missing fields are 0), padded to 16 bytes. */
export function packParams(fields: ParamFields, values: Record<string, number>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  for (const key of Object.keys(values)) {
    if (!fields.some(([n]) => n === key)) throw new Error(`unknown kernel parameter '${key}'`);
  }
  fields.forEach(([name, type], i) => {
    const v = values[name] ?? 0;
    if (type === 'f32') f[i] = v;
    else {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`parameter ${name} = ${v} is not a u32`);
      u[i] = v;
    }
  });
  return buf;
}

/** `n` copies of `f(i)`, joined by newlines: code-generated unrolling of register tiles. */
export function unroll(n: number, f: (i: number) => string): string {
  return Array.from({ length: n }, (_, i) => f(i)).join('\n');
}
