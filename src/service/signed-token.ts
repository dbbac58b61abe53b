/**
 * Opaque, tamper-evident tokens: base64url(JSON payload) '.' base64url(HMAC-SHA256), so every
 * character is RFC 3986 unreserved. Paging cursors and delta tokens both use it; each checks its
 * own payload's meaning.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export class SignedTokenCodec {
  /** `label` separates the token kinds signed with one secret (it is MACed before the data). */
  constructor(
    private readonly secret: string,
    private readonly label = '',
  ) {}

  private mac(data: string): Buffer {
    return createHmac('sha256', this.secret).update(`${this.label}${data}`).digest();
  }

  encode(payload: object): string {
    const data = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${data}.${this.mac(data).toString('base64url')}`;
  }

  /** The payload of a token this codec signed; undefined when it is malformed or forged. */
  decode(value: string): unknown {
    const dot = value.indexOf('.');
    if (dot <= 0) return undefined;
    const data = value.slice(0, dot);
    // The signature's text is compared, not its decoded bytes: base64url's last character carries
    // unused bits, so other spellings of the same bytes would otherwise pass as untouched.
    const given = Buffer.from(value.slice(dot + 1));
    const expected = Buffer.from(this.mac(data).toString('base64url'));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      return JSON.parse(Buffer.from(data, 'base64url').toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  }
}
