/**
 * What a worker of the wasm backend does, in Node (worker.ts) and in browsers (worker-browser.ts):
 * the first request instantiates the kernel module over the shared memory and is answered when
 * ready; each later request runs one kernel as thread `thread` and is answered when it returns
 * ({} or {error}).
 */

/** Host -> worker: first {init}, then one {kernel, args} at a time. */
export type WorkerRequest =
  | { init: { module: unknown; memory: unknown; thread: number } }
  | { kernel: string; args: number[] };
/** Worker -> host: {} when done, {error} when it threw. */
export interface WorkerReply {
  error?: string;
}

type Kernel = (thread: number, ...args: number[]) => void;
type Instantiate = (module: unknown, imports: object) => { exports: Record<string, Kernel> };

const api = (globalThis as unknown as { WebAssembly: { Instance: new (...a: Parameters<Instantiate>) => ReturnType<Instantiate> } })
  .WebAssembly;

/** Answers every request given to the returned handler through `reply`. */
export function serveKernels(reply: (message: WorkerReply) => void): (request: WorkerRequest) => void {
  let kernels: Record<string, Kernel> | null = null;
  let thread = 0;
  return (request) => {
    try {
      if ('init' in request) {
        thread = request.init.thread;
        kernels = new api.Instance(request.init.module, { env: { memory: request.init.memory } }).exports;
      } else {
        kernels![request.kernel]!(thread, ...request.args);
      }
      reply({});
    } catch (e) {
      reply({ error: e instanceof Error ? e.message : String(e) });
    }
  };
}
