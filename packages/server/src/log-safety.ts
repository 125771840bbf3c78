/**
 * Request data can end up inside error messages (a user id in a store error, a value in a parser error).
 * Before an error is logged, its text is made safe: control characters (terminal escapes, CR/LF that fake
 * log lines in a pretty-printed log) become '?', and long texts are cut so one request cannot flood the log.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this pattern is for
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const MAX_MESSAGE = 500;
const MAX_FRAMES = 20;

export function logSafe(text: string, max = MAX_MESSAGE): string {
  const clean = text.replace(CONTROL, "?");
  return clean.length > max ? `${clean.slice(0, max)}... (${clean.length - max} more characters)` : clean;
}

/** A loggable view of anything thrown: type, code, a sanitised message and the stack frames (the stack's own copy of the message is dropped). */
export function errorForLog(err: unknown): { type: string; message: string; code?: string; stack?: string[] } {
  if (!(err instanceof Error)) return { type: typeof err, message: logSafe(String(err)) };
  const code = (err as { code?: unknown }).code;
  const frames = (err.stack ?? "")
    .split("\n")
    .filter((line) => /^\s+at /.test(line))
    .slice(0, MAX_FRAMES)
    .map((line) => logSafe(line.trim(), 300));
  return {
    type: err.name,
    message: logSafe(err.message),
    ...(typeof code === "string" ? { code: logSafe(code, 64) } : {}),
    ...(frames.length ? { stack: frames } : {}),
  };
}

/**
 * An absolute path (POSIX, Windows drive or UNC, or a file:// URL) not inside a URL or a relative path: what
 * a failure reason may carry from a loader or the file system.
 */
const ABSOLUTE_PATH = /(?<![\w.:/\\])(?:file:\/\/)?(?:\/|[A-Za-z]:[\\/]|\\\\)[^\s'"`()<>,;]*/g;

/** A failure reason fit for an API answer: absolute paths (which tell a client where the server keeps things) become their basename. */
export function withoutPaths(reason: string): string {
  return reason.replace(ABSOLUTE_PATH, (path) => path.split(/[\\/]/).filter(Boolean).pop() ?? path);
}
