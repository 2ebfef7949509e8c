/**
 * The checks of scripts/score-f16-check.mjs, for any device (also test/webgpu-f16.test.ts, with
 * the subgroup matrices emulated): scorePartials-f16 (gpu/kernels/score-f16.wgsl.ts) on random
 * f16 Q window rows and K, its partials (m, l) and prefix logits against float64 on the same
 * values. Imports the built kernels (dist/).
 */
import { emulate as emulateMatrices, fromHalf, toHalf } from './f16-lab-checks.mjs';

const K = (f) => import(new URL(`../dist/gpu/kernels/${f}`, import.meta.url).href);
const { scorePartialsF16Kernel, scoreF16SharedBytes } = await K('score-f16.wgsl.js');
const { ROW_ALIGN } = await K('attend-f16.wgsl.js');
const { kernelWgsl } = await K('kernel.js');
const { packParams } = await K('params.js');

/**
 * `problem(shape)` (buffers, a timed run, readbacks) and `check(shape)` (errors against float64,
 * `ok`) on `dev`; `emulate`: subgroup matrices as plain WGSL; `config`: overrides of the kernel's
 * config; `timestamps`: the device has timestamp-query.
 */
export function scoreF16Checker(dev, { emulate = false, config = {}, timestamps = false } = {}) {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const gauss = () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());

  function buffer(data, usage) {
    const b = dev.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage: usage | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    dev.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  }
  async function readBack(b, n) {
    const st = dev.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(b, 0, st, 0, n * 4);
    dev.queue.submit([enc.finish()]);
    await st.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(st.getMappedRange().slice(0));
    st.destroy();
    return out;
  }

  /** One problem (random values from `seed`, scaled by `mag`): f16 window Q [H][Wr][DP] and K [Hkv][Lr][DP], the kernel's buffers and dispatch. */
  async function problem({ H, Hkv, D, L, W, sgh = Math.min(8, 2 ** Math.ceil(Math.log2(Math.ceil(W / 16)))), bn = 32, blocks = sgh === 8 ? 8 : 4, mag = 1, seed: inputSeed = 7, ...more }) {
    seed = inputSeed >>> 0;
    // The stage's choice (stages/score.ts): as many heads of a KV group per workgroup as fit 8 subgroups.
    const hpw = [8, 4, 2, 1].find((n) => n * sgh <= 8 && (H / Hkv) % n === 0);
    const c = { sg: hpw * sgh, sgh, bn, dp: Math.ceil(D / 16) * 16, blocks, ...more };
    if (scoreF16SharedBytes(c) > dev.limits.maxComputeWorkgroupStorageSize) throw new Error(`config ${JSON.stringify(c)} does not fit`);
    const P = L - W, DP = c.dp;
    const Wr = Math.ceil(W / ROW_ALIGN) * ROW_ALIGN, Lr = Math.ceil(L / ROW_ALIGN) * ROW_ALIGN;
    const q = new Uint16Array(H * Wr * DP), k = new Uint16Array(Hkv * Lr * DP);
    for (let h = 0; h < H; h++) for (let r = 0; r < W; r++) for (let d = 0; d < D; d++) q[(h * Wr + r) * DP + d] = toHalf(gauss() * mag);
    for (let h = 0; h < Hkv; h++) for (let r = 0; r < L; r++) for (let d = 0; d < D; d++) k[(h * Lr + r) * DP + d] = toHalf(gauss() * mag);
    const nb = Math.ceil(L / c.bn);
    const nPass = Math.ceil(W / (16 * sgh));
    const kernel = scorePartialsF16Kernel(c);
    const code = emulate ? emulateMatrices(kernelWgsl(kernel), ['qIn', 'ks']) : kernelWgsl(kernel);
    dev.pushErrorScope('validation');
    const mod = dev.createShaderModule({ code });
    for (const m of (await mod.getCompilationInfo()).messages) if (m.type === 'error') throw new Error(`wgsl ${m.lineNum}: ${m.message}\n${code.split('\n')[m.lineNum - 1]}`);
    const pipe = await dev.createComputePipelineAsync({ layout: 'auto', compute: { module: mod, entryPoint: 'main' } });
    const err = await dev.popErrorScope();
    if (err) throw new Error(err.message);
    const params = packParams(kernel.params, { L, P, W, qBase: 0, kBase: 0, qHeadStride: Wr * DP, kvHeadStride: Lr * DP, h0: 0, kvDiv: H / Hkv, kv0: 0, scale: 1 / Math.sqrt(D), nKeyBlocks: nb, nPass, partBase: 0, partHeadStride: nb * W * 2, logitsBase: 0, logitsHeadStride: W * P });
    const partials = dev.createBuffer({ size: H * nb * W * 2 * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const logits = dev.createBuffer({ size: Math.max(16, H * W * P * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const bufs = [buffer(new Uint8Array(params), GPUBufferUsage.UNIFORM), buffer(q, GPUBufferUsage.STORAGE), buffer(k, GPUBufferUsage.STORAGE), partials, logits];
    const bg = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: bufs.map((b, i) => ({ binding: i, resource: { buffer: b } })) });
    const qs = timestamps ? dev.createQuerySet({ type: 'timestamp', count: 2 }) : null;
    const qb = qs && dev.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const qr = qs && dev.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const run = async (reps = 1) => {
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(nPass * Math.ceil(nb / blocks), H / hpw);
      pass.end();
      if (qs) {
        enc.resolveQuerySet(qs, 0, 2, qb, 0);
        enc.copyBufferToBuffer(qb, 0, qr, 0, 16);
      }
      dev.queue.submit([enc.finish()]);
      if (!qs) return dev.queue.onSubmittedWorkDone().then(() => NaN);
      await qr.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(qr.getMappedRange().slice(0));
      qr.unmap();
      return Number(t[1] - t[0]) / 1e6 / reps;
    };
    const destroy = () => [...bufs, qb, qr].forEach((b) => b?.destroy());
    return { c, P, nb, q, k, Wr, Lr, DP, run, partials: () => readBack(partials, H * nb * W * 2), logits: () => readBack(logits, H * W * P), destroy };
  }

  /** Max relative errors of the partials' m (absolute) and l, and of the logits, against float64; ok within 1e-5 / 1e-4. */
  async function check(s) {
    const pr = await problem({ ...s, ...config });
    await pr.run();
    const [part, lg] = [await pr.partials(), await pr.logits()];
    const { H, Hkv, D, L, W } = s;
    const { P, nb, q, k, Wr, Lr, DP, c } = pr;
    const scale = 1 / Math.sqrt(D);
    let logitErr = 0, mErr = 0, lErr = 0;
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / (H / Hkv));
      for (let i = 0; i < W; i++) {
        const row = new Float64Array(L);
        for (let t = 0; t < L; t++) {
          let x = 0;
          for (let d = 0; d < D; d++) x += fromHalf(q[(h * Wr + i) * DP + d]) * fromHalf(k[(kh * Lr + t) * DP + d]);
          row[t] = x * scale;
        }
        for (let t = 0; t < P; t++) logitErr = Math.max(logitErr, Math.abs(lg[(h * W + i) * P + t] - row[t]) / (1 + Math.abs(row[t])));
        for (let b = 0; b < nb; b++) {
          let m = -Infinity, l = 0;
          for (let t = b * c.bn; t < Math.min(L, (b + 1) * c.bn); t++) if (t <= P + i) m = Math.max(m, row[t]);
          for (let t = b * c.bn; t < Math.min(L, (b + 1) * c.bn); t++) if (t <= P + i) l += Math.exp(row[t] - m);
          const gm = part[((h * nb + b) * W + i) * 2], gl = part[((h * nb + b) * W + i) * 2 + 1];
          if (l === 0) {
            if (gl !== 0) lErr = Infinity;
            continue;
          }
          mErr = Math.max(mErr, Math.abs(gm - m) / (1 + Math.abs(m)));
          lErr = Math.max(lErr, Math.abs(gl - l) / l);
        }
      }
    }
    pr.destroy();
    const ok = logitErr < 1e-5 && mErr < 1e-5 && lErr < 1e-4;
    return { ok, c, logitErr, mErr, lErr };
  }
  return { problem, check };
}
