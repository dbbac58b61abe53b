/**
 * The Prefer request header (RFC 7240): preferences are comma-separated `token[=value]` items,
 * each optionally followed by `;parameter[=value]`; names compare case-insensitively; a value may
 * be a quoted string; several Prefer fields are one list; a preference given twice counts only
 * the first time (§2).
 */

export interface Preferences {
  /** `respond-async` (§4.1) was asked for. */
  respondAsync: boolean;
  /** `wait=N` (§4.3): seconds the client is willing to wait for a synchronous answer. */
  wait?: number;
  /** Every preference by lower-cased name, with its value ('' when it has none). */
  all: Map<string, string>;
}

/** Splits on `sep` outside double-quoted strings. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '\\' && i + 1 < text.length) {
      current += c + text[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      out.push(current);
      current = '';
    } else current += c;
  }
  out.push(current);
  return out;
}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

export function parsePrefer(header: string | string[] | undefined): Preferences {
  const all = new Map<string, string>();
  const fields = header === undefined ? [] : Array.isArray(header) ? header : [header];
  for (const field of fields) {
    for (const item of splitOutsideQuotes(field, ',')) {
      // Parameters after ';' qualify a preference; none of the ones scimd applies has any.
      const [pref] = splitOutsideQuotes(item, ';');
      const eq = pref.indexOf('=');
      const name = (eq >= 0 ? pref.slice(0, eq) : pref).trim().toLowerCase();
      if (name === '' || all.has(name)) continue;
      all.set(name, eq >= 0 ? unquote(pref.slice(eq + 1)) : '');
    }
  }
  const prefs: Preferences = { respondAsync: all.has('respond-async'), all };
  const wait = all.get('wait');
  if (wait !== undefined && /^\d+$/.test(wait)) prefs.wait = Number(wait);
  return prefs;
}
