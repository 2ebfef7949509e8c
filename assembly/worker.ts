/**
 * A worker thread of the wasm backend (see runtime.ts): instantiates the kernel module over the
 * shared memory, says it is ready, then runs each requested kernel as thread `thread` and answers
 * when it returns ({} or {error}).
 */
import { parentPort, workerData } from 'node:worker_threads';

interface Init {
  module: unknown;
  memory: unknown;
  thread: number;
}

type Kernel = (thread: number, ...args: number[]) => void;

const { module, memory, thread } = workerData as Init;
const port = parentPort!;
const api = (globalThis as unknown as { WebAssembly: { Instance: new (m: unknown, i: object) => { exports: Record<string, Kernel> } } })
  .WebAssembly;

let kernels: Record<string, Kernel> | null = null;
try {
  kernels = new api.Instance(module, { env: { memory } }).exports;
  port.postMessage({});
} catch (e) {
  port.postMessage({ error: e instanceof Error ? e.message : String(e) });
}

port.on('message', ({ kernel, args }: { kernel: string; args: number[] }) => {
  try {
    kernels![kernel]!(thread, ...args);
    port.postMessage({});
  } catch (e) {
    port.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
});
