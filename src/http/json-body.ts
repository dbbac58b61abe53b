/**
 * Request body parsing for application/scim+json and application/json. Malformed JSON and
 * pathological nesting are refused with 400 invalidSyntax before anything else sees the body.
 */
import { ScimError } from '../scim/errors.ts';

/** Far deeper than any SCIM message (a PatchOp value is at most ~5 levels), far below stack limits. */
export const MAX_JSON_DEPTH = 32;

export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  checkDepth(text);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw ScimError.badRequest(
      'invalidSyntax',
      `The request body is not valid JSON: ${(err as Error).message}`,
    );
  }
}

/** Counts bracket depth outside strings without parsing, so a 10,000-deep array never reaches JSON.parse. */
function checkDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > MAX_JSON_DEPTH) {
        throw ScimError.badRequest(
          'invalidSyntax',
          `The request body nests deeper than ${MAX_JSON_DEPTH} levels`,
        );
      }
    } else if (c === 125 || c === 93) depth--;
  }
}
