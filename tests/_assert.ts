// deno-std's assertions come without types from npm; these are the few the tests need.

type ErrorClass = new (...args: never[]) => Error;

function check(error: unknown, Class: ErrorClass, includes?: string): void {
  if (!(error instanceof Class)) {
    throw new Error(
      `Expected ${Class.name}, got ${error instanceof Error ? error.name : error}: ${error}`,
    );
  }
  if (includes && !error.message.includes(includes)) {
    throw new Error(`Expected the message to include "${includes}", got "${error.message}"`);
  }
}

export function assertThrows(fn: () => unknown, Class: ErrorClass, includes?: string): Error {
  try {
    fn();
  } catch (error) {
    check(error, Class, includes);
    return error as Error;
  }
  throw new Error(`Expected ${Class.name} to be thrown`);
}

export async function assertRejects(
  fn: () => Promise<unknown>,
  Class: ErrorClass,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    check(error, Class, includes);
    return error as Error;
  }
  throw new Error(`Expected ${Class.name} to be thrown`);
}

export function assertEquals<T>(actual: T, expected: T, label = "value"): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${label}: ${a} !== ${e}`);
}
