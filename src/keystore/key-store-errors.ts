import { AppError, ErrorCode } from '../errors.ts';

/**
 * A key reference the store cannot use: a sealed key that fails authentication (tampered with, bound to another
 * key id, sealed under another master key) or a reference that is malformed or points at nothing.
 * It is a server-side fault, never the caller's, hence 500.
 */
export class KeyStoreError extends AppError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(500, ErrorCode.Internal, message, options);
    this.name = 'KeyStoreError';
  }
}
