/** A browser worker of the wasm backend (assembly/browser.ts spawns it): serves worker-core.ts's protocol. */
import { serveKernels, type WorkerRequest } from './worker-core.js';

const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: WorkerRequest }) => void): void;
};
const handle = serveKernels((reply) => scope.postMessage(reply));
scope.addEventListener('message', (event) => handle(event.data));
