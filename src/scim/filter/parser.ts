/**
 * Filter and PATCH path parser (RFC 7644 §3.4.2.2 Figure 1, §3.5.2 PATH).
 *
 * A single left-to-right scanner feeds a recursive-descent parser, so parsing is linear in the
 * input. Recursion happens only on textual nesting (parentheses, `not`, `[...]`), which is capped
 * at MAX_FILTER_DEPTH; `and`/`or` chains are parsed by loops into left-deep trees, and their length
 * is capped at MAX_FILTER_TERMS so that the recursive consumers of the tree (binder, evaluator, SQL
 * compiler) never see a tree deeper than about MAX_FILTER_TERMS + MAX_FILTER_DEPTH.
 *
 * Positions in error details are 0-based character offsets into the text as given.
 */
import { ScimError, type ScimType } from '../errors.ts';
import type { AttrPath, CompareOp, Filter, FilterValue, PatchPath } from './ast.ts';

export interface ParseOptions {
  /** Known schema URNs: a path prefix is matched against the longest of them (case-insensitive). */
  schemaUris?: readonly string[];
}

export const MAX_FILTER_DEPTH = 50;
export const MAX_FILTER_TERMS = 1000;
/** Error details quote the input up to this length, so a huge filter does not make a huge error. */
const MAX_ECHO = 300;

const COMPARE_OPS: ReadonlySet<string> = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
const ATTR_NAME = /^(?:[A-Za-z][A-Za-z0-9_$-]*|\$ref)$/i;
/** Characters of an attribute path token: names, sub-attribute dots and schema URN colons. */
const PATH_CHAR = /[A-Za-z0-9_$.:-]/;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const WHITESPACE = new Set([' ', '\t', '\r', '\n']);

type Token =
  | { kind: 'word'; text: string; pos: number }
  | { kind: 'string'; value: string; text: string; pos: number }
  | { kind: 'number'; value: number; text: string; pos: number }
  | { kind: 'punct'; text: '(' | ')' | '[' | ']'; pos: number }
  | { kind: 'end'; text: ''; pos: number };

function describe(t: Token): string {
  if (t.kind === 'end') return 'end of input';
  return t.kind === 'string' ? t.text : `"${t.text}"`;
}

class Parser {
  private pos = 0;
  private peeked: Token | undefined;
  private depth = 0;
  private terms = 0;
  /** Which error type a filter syntax error is: invalidFilter, except for path-only syntax. */
  constructor(
    private readonly text: string,
    private readonly opts: ParseOptions,
    private readonly what: 'filter' | 'path',
  ) {}

  /** Details end with the input, so a client can see what the position refers to. */
  fail(detail: string, scimType: ScimType = 'invalidFilter'): never {
    const context = detail.endsWith(`end of ${this.what}`) ? ':' : ` in ${this.what}:`;
    const text =
      this.text.length <= MAX_ECHO
        ? this.text
        : `${this.text.slice(0, MAX_ECHO)}… (${this.text.length} characters)`;
    throw ScimError.badRequest(scimType, `${detail}${context} ${text}`);
  }

  // ---- scanner -------------------------------------------------------------------------------

  private skipSpace(): void {
    while (this.pos < this.text.length && WHITESPACE.has(this.text[this.pos])) this.pos++;
  }

  peek(): Token {
    if (!this.peeked) this.peeked = this.scan();
    return this.peeked;
  }

  next(): Token {
    const t = this.peek();
    this.peeked = undefined;
    return t;
  }

  private scan(): Token {
    this.skipSpace();
    const text = this.text;
    const start = this.pos;
    if (start >= text.length) return { kind: 'end', text: '', pos: start };
    const c = text[start];
    if (c === '(' || c === ')' || c === '[' || c === ']') {
      this.pos++;
      return { kind: 'punct', text: c, pos: start };
    }
    if (c === '"') return this.scanString(start);
    if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = start;
      const m = NUMBER.exec(text);
      let end = m ? start + m[0].length : start;
      if (!m || (end < text.length && (PATH_CHAR.test(text[end]) || text[end] === '"'))) {
        while (end < text.length && (PATH_CHAR.test(text[end]) || text[end] === '+')) end++;
        this.fail(`Invalid number "${text.slice(start, Math.max(end, start + 1))}" at position ${start}`);
      }
      this.pos = end;
      return { kind: 'number', value: Number(m[0]), text: m[0], pos: start };
    }
    if (PATH_CHAR.test(c)) {
      let end = start + 1;
      while (end < text.length && PATH_CHAR.test(text[end])) end++;
      this.pos = end;
      return { kind: 'word', text: text.slice(start, end), pos: start };
    }
    this.fail(`Unexpected character "${c}" at position ${start}`);
  }

  /** A JSON string (RFC 8259 §7); raw control characters are tolerated rather than rejected. */
  private scanString(start: number): Token {
    const text = this.text;
    let i = start + 1;
    let out = '';
    let chunk = i;
    for (;;) {
      if (i >= text.length) this.fail(`Unterminated string starting at position ${start}`);
      const c = text[i];
      if (c === '"') break;
      if (c !== '\\') {
        i++;
        continue;
      }
      out += text.slice(chunk, i);
      const e = text[i + 1];
      if (e === undefined) this.fail(`Unterminated string starting at position ${start}`);
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail(`Invalid \\u escape "\\u${hex}" at position ${i}`);
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default:
          this.fail(`Invalid escape "\\${e}" at position ${i} in string`);
      }
      i += 2;
      chunk = i;
    }
    out += text.slice(chunk, i);
    this.pos = i + 1;
    return { kind: 'string', value: out, text: text.slice(start, i + 1), pos: start };
  }

  // ---- paths ---------------------------------------------------------------------------------

  /**
   * Splits a path token into `[uri ":"] attr ["." sub]`. With known URNs the longest matching one
   * wins; otherwise the URN is everything before the last colon (attribute names have no colons).
   * Returns `attr: ''` when the whole token is a known URN.
   */
  attrPath(token: string, pos: number, scimType: ScimType): AttrPath {
    const lower = token.toLowerCase();
    let uri: string | undefined;
    let rest = token;
    let best = -1;
    for (const u of this.opts.schemaUris ?? []) {
      const ul = u.toLowerCase();
      if (
        ul.length > best &&
        lower.startsWith(ul) &&
        (lower.length === ul.length || lower[ul.length] === ':')
      ) {
        best = ul.length;
      }
    }
    if (best >= 0) {
      uri = token.slice(0, best);
      if (best === token.length) return { uri, attr: '' };
      rest = token.slice(best + 1);
    } else {
      const colon = token.lastIndexOf(':');
      if (colon >= 0) {
        uri = token.slice(0, colon);
        rest = token.slice(colon + 1);
        if (uri === '') this.fail(`Invalid attribute path "${token}" at position ${pos}`, scimType);
      }
    }
    const parts = rest.split('.');
    if (parts.length > 2 || !parts.every((p) => ATTR_NAME.test(p))) {
      this.fail(`Invalid attribute path "${token}" at position ${pos}`, scimType);
    }
    const path: AttrPath = uri === undefined ? { attr: parts[0] } : { uri, attr: parts[0] };
    if (parts.length === 2) path.subAttr = parts[1];
    return path;
  }

  // ---- filters -------------------------------------------------------------------------------

  private enter(pos: number): void {
    if (++this.depth > MAX_FILTER_DEPTH) {
      this.fail(`Filter nested deeper than ${MAX_FILTER_DEPTH} levels at position ${pos}`);
    }
  }

  private countTerm(pos: number): void {
    if (++this.terms > MAX_FILTER_TERMS) {
      this.fail(`Filter has more than ${MAX_FILTER_TERMS} terms at position ${pos}`);
    }
  }

  private keyword(t: Token, word: string): boolean {
    return t.kind === 'word' && t.text.toLowerCase() === word;
  }

  /** filter = term *(("and" / "or") term), `and` binding tighter than `or`; both left-associative. */
  filter(inValuePath: boolean): Filter {
    let left = this.conjunction(inValuePath);
    while (this.keyword(this.peek(), 'or')) {
      this.next();
      left = { op: 'or', left, right: this.conjunction(inValuePath) };
    }
    return left;
  }

  private conjunction(inValuePath: boolean): Filter {
    let left = this.term(inValuePath);
    while (this.keyword(this.peek(), 'and')) {
      this.next();
      left = { op: 'and', left, right: this.term(inValuePath) };
    }
    return left;
  }

  private term(inValuePath: boolean): Filter {
    const t = this.next();
    if (t.kind === 'punct' && t.text === '(') {
      this.enter(t.pos);
      const inner = this.filter(inValuePath);
      this.close(')', t.pos);
      this.depth--;
      return inner;
    }
    if (this.keyword(t, 'not')) {
      const open = this.next();
      if (!(open.kind === 'punct' && open.text === '(')) {
        this.fail(`Expected "(" after "not" at position ${open.pos}, found ${describe(open)}`);
      }
      this.enter(t.pos);
      const inner = this.filter(inValuePath);
      this.close(')', open.pos);
      this.depth--;
      return { op: 'not', filter: inner };
    }
    if (t.kind !== 'word') {
      this.fail(`Expected an attribute path or "(" at position ${t.pos}, found ${describe(t)}`);
    }
    const path = this.attrPath(t.text, t.pos, 'invalidFilter');
    if (path.attr === '')
      this.fail(`Expected an attribute name after schema URN "${t.text}" at position ${t.pos}`);
    this.countTerm(t.pos);

    const opTok = this.next();
    if (opTok.kind === 'punct' && opTok.text === '[') {
      if (inValuePath) this.fail(`Nested value filter "${t.text}[" at position ${opTok.pos}`);
      this.enter(opTok.pos);
      const inner = this.filter(true);
      this.close(']', opTok.pos);
      this.depth--;
      return { op: 'valuePath', path, filter: inner };
    }
    if (opTok.kind !== 'word') {
      this.fail(`Expected an operator after "${t.text}" at position ${opTok.pos}, found ${describe(opTok)}`);
    }
    const op = opTok.text.toLowerCase();
    if (op === 'pr') return { op: 'pr', path };
    if (!COMPARE_OPS.has(op)) this.fail(`Unknown operator "${opTok.text}" at position ${opTok.pos}`);
    return { op: op as CompareOp, path, value: this.value(opTok.text) };
  }

  private value(opText: string): FilterValue {
    const v = this.next();
    if (v.kind === 'string' || v.kind === 'number') return v.value;
    if (v.kind === 'word') {
      const w = v.text.toLowerCase();
      if (w === 'true') return true;
      if (w === 'false') return false;
      if (w === 'null') return null;
    }
    this.fail(
      `Expected a value after "${opText}" at position ${v.pos}, found ${describe(v)}` +
        ' (values are "quoted strings", numbers, true, false or null)',
    );
  }

  private close(ch: ')' | ']', openPos: number): void {
    const t = this.next();
    if (t.kind === 'punct' && t.text === ch) return;
    this.fail(
      `Missing "${ch}" for "${ch === ')' ? '(' : '['}" at position ${openPos}: found ${describe(t)} at position ${t.pos}`,
    );
  }

  expectEnd(): void {
    const t = this.peek();
    if (t.kind !== 'end')
      this.fail(`Unexpected ${describe(t)} at position ${t.pos} after end of ${this.what}`);
  }

  // ---- PATCH paths ---------------------------------------------------------------------------

  patchPath(): PatchPath {
    const text = this.text;
    this.skipSpace();
    const start = this.pos;
    let end = start;
    while (end < text.length && PATH_CHAR.test(text[end])) end++;
    if (end === start) {
      this.fail(
        start >= text.length
          ? 'Empty path'
          : `Expected an attribute path at position ${start}, found "${text[start]}"`,
        'invalidPath',
      );
    }
    const path = this.attrPath(text.slice(start, end), start, 'invalidPath');
    this.pos = end;
    this.skipSpace();
    const out: PatchPath = { path };
    if (text[this.pos] === '[') {
      if (path.attr === '')
        this.fail(`A value filter cannot follow a schema URN (position ${this.pos})`, 'invalidPath');
      const open = this.pos++;
      this.depth = 1;
      out.valueFilter = this.filter(true);
      const t = this.next();
      if (!(t.kind === 'punct' && t.text === ']')) {
        this.fail(
          `Missing "]" for "[" at position ${open}: found ${describe(t)} at position ${t.pos}`,
          'invalidPath',
        );
      }
      this.skipSpace();
      if (text[this.pos] === '.') {
        const subStart = ++this.pos;
        let subEnd = subStart;
        while (subEnd < text.length && PATH_CHAR.test(text[subEnd])) subEnd++;
        const sub = text.slice(subStart, subEnd);
        if (!ATTR_NAME.test(sub)) {
          this.fail(`Invalid sub-attribute "${sub}" after "]" at position ${subStart}`, 'invalidPath');
        }
        out.subAttr = sub;
        this.pos = subEnd;
      }
    }
    this.skipSpace();
    if (this.pos < text.length) {
      this.fail(`Unexpected "${text[this.pos]}" at position ${this.pos} after end of path`, 'invalidPath');
    }
    return out;
  }
}

/** Parses a `filter` query parameter / SearchRequest filter. Throws 400 invalidFilter. */
export function parseFilter(text: string, opts: ParseOptions = {}): Filter {
  const p = new Parser(text, opts, 'filter');
  if (p.peek().kind === 'end') p.fail('Empty filter');
  const f = p.filter(false);
  p.expectEnd();
  return f;
}

/**
 * Parses a PATCH operation path. Path syntax errors are 400 invalidPath; errors inside the
 * `[...]` value filter are 400 invalidFilter. A bare known schema URN yields `{ uri, attr: '' }`
 * (only recognised when `schemaUris` is given; the binder also recognises it without).
 */
export function parsePath(text: string, opts: ParseOptions = {}): PatchPath {
  return new Parser(text, opts, 'path').patchPath();
}

function formatPath(p: AttrPath): string {
  return `${p.uri !== undefined ? `${p.uri}:` : ''}${p.attr}${p.subAttr !== undefined ? `.${p.subAttr}` : ''}`;
}

function formatValue(v: FilterValue): string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot format non-finite number ${v} in a filter`);
    return Object.is(v, -0) ? '-0' : String(v);
  }
  return JSON.stringify(v);
}

/**
 * Canonical text: lower-case operators, one space between tokens, parentheses only where the
 * left-associative `and`-over-`or` grammar needs them, so parseFilter(formatFilter(f)) equals f.
 */
export function formatFilter(f: Filter): string {
  switch (f.op) {
    case 'pr':
      return `${formatPath(f.path)} pr`;
    case 'not':
      return `not (${formatFilter(f.filter)})`;
    case 'valuePath':
      return `${formatPath(f.path)}[${formatFilter(f.filter)}]`;
    case 'and':
    case 'or': {
      const left = formatFilter(f.left);
      const right = formatFilter(f.right);
      const leftParen = f.op === 'and' && f.left.op === 'or';
      const rightParen = f.right.op === 'or' || (f.op === 'and' && f.right.op === 'and');
      return `${leftParen ? `(${left})` : left} ${f.op} ${rightParen ? `(${right})` : right}`;
    }
    default:
      return `${formatPath(f.path)} ${f.op} ${formatValue(f.value)}`;
  }
}
