/** A Node worker thread of the wasm backend (assembly/node.ts spawns it): serves worker-core.ts's protocol. */
import { parentPort } from 'node:worker_threads';
import { serveKernels, type WorkerRequest } from './worker-core.js';

const port = parentPort!;
const handle = serveKernels((reply) => port.postMessage(reply));
port.on('message', (request: WorkerRequest) => handle(request));
