/**
 * An error whose message is meant for the person running selfsup: one line that says what
 * went wrong and what to do about it. The CLI prints it without a stack trace and exits 1;
 * any other error is a bug in selfsup and keeps its stack.
 */
export class SelfsupError extends Error {
  override name = "SelfsupError";
}
