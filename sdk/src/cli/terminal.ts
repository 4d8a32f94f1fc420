/**
 * Text from the server (model and file names, error details) shown in a terminal: control
 * characters and bidi overrides in it could move the cursor, recolour or retitle the terminal,
 * or disguise what is shown. Human-readable output passes through terminalSafe; JSON output
 * through jsonForTerminal, which keeps the JSON's value exactly.
 */

/** C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/** The same, and newline and tab: inside a JSON string they are escapes already. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `text` with each unsafe character shown as a visible `\uXXXX` instead of acting on the terminal. */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, escape);
}

/**
 * JSON text (as JSON.stringify wrote it, which escapes C0 controls already) with the other unsafe
 * characters escaped too: the same JSON value, nothing a terminal acts on.
 */
export function jsonForTerminal(json: string): string {
  return json.replace(UNSAFE_IN_JSON, escape);
}
