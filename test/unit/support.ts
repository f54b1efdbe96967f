import { AppError } from '../../src/errors.ts';

/** What a synchronous call refused with, as plain data for t.match; a string when it did not throw an AppError. */
export function refusal(fn: () => unknown): { status: number; code: string; message: string } | string {
  try {
    fn();
    return 'no error thrown';
  } catch (error) {
    return error instanceof AppError
      ? { status: error.statusCode, code: error.code, message: error.message }
      : `non-AppError thrown: ${String(error)}`;
  }
}
