/** Typed errors of the library. Every error says what was wrong and what was expected. */

export type TsaInputErrorCode =
  | 'SHAPE'
  | 'HEADS'
  | 'NON_FINITE'
  /** Finite values too large for the f32 compute (core/range.ts states the bound). */
  | 'RANGE'
  | 'OPTION'
  | 'INDICES'
  | 'MASK'
  | 'TYPE'
  | 'PRECISION';

export class TsaError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input: nothing was computed. */
export class TsaInputError extends TsaError {
  constructor(message: string, readonly inputCode: TsaInputErrorCode) {
    super(message, `TSA_INPUT_${inputCode}`);
  }
}

/** One backend's reason for being unavailable. */
export interface UnavailableReason {
  backend: string;
  reason: string;
}

/** A backend (or every backend) could not be created. */
export class BackendUnavailableError extends TsaError {
  constructor(message: string, readonly reasons: UnavailableReason[] = []) {
    super(message, 'TSA_BACKEND_UNAVAILABLE');
  }
}

/** The backend's device or workers are gone; create a new backend (or fall back). */
export class BackendLostError extends TsaError {
  constructor(message: string) {
    super(message, 'TSA_BACKEND_LOST');
  }
}

/** What a BackendResourceError is about. */
export type BackendResourceKind =
  /** The device ran out of memory for the call's buffers. */
  | 'OUT_OF_MEMORY'
  /** The device rejected the call's work (a WebGPU validation error). */
  | 'VALIDATION'
  /** The device finished without leaving the result the backend expected. */
  | 'INTERNAL';

/**
 * The device could not run the call (out of memory, a validation error); the
 * backend stays usable for calls that fit. `code` is TSA_BACKEND_<kind>.
 */
export class BackendResourceError extends TsaError {
  constructor(message: string, readonly kind: BackendResourceKind) {
    super(message, `TSA_BACKEND_${kind}`);
  }
}

/** The call's AbortSignal fired: the call stopped, its resources are freed, the backend stays usable. */
export class TsaAbortError extends TsaError {
  constructor(message: string, readonly reason?: unknown) {
    super(message, 'TSA_ABORTED');
  }
}

/** Throws TsaAbortError if `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | null | undefined): void {
  if (signal?.aborted) throw new TsaAbortError(`the call was aborted${signal.reason instanceof Error ? `: ${signal.reason.message}` : ''}`, signal.reason);
}

/**
 * A cancellation point of a long computation: lets pending events (an abort) run, then
 * throwIfAborted. Without a signal there is nothing to wait for and it returns at once.
 */
export async function checkpoint(signal: AbortSignal | null | undefined): Promise<void> {
  if (!signal) return;
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
  throwIfAborted(signal);
}
