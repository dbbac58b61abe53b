/**
 * SCIM errors (RFC 7644 §3.12). Every failure that reaches a client is a ScimError; the HTTP layer
 * turns it into an `urn:ietf:params:scim:api:messages:2.0:Error` body with `status` as a string.
 */
export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive'
  | 'invalidCursor'
  | 'expiredCursor'
  | 'invalidCount';

export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

export interface ScimErrorBody {
  schemas: [typeof ERROR_SCHEMA];
  status: string;
  scimType?: ScimType;
  detail?: string;
}

export class ScimError extends Error {
  constructor(
    readonly status: number,
    readonly scimType: ScimType | undefined,
    detail: string,
  ) {
    super(detail);
    this.name = 'ScimError';
  }

  get detail(): string {
    return this.message;
  }

  toBody(): ScimErrorBody {
    const body: ScimErrorBody = { schemas: [ERROR_SCHEMA], status: String(this.status) };
    if (this.scimType) body.scimType = this.scimType;
    body.detail = this.message;
    return body;
  }

  static badRequest(scimType: ScimType, detail: string): ScimError {
    return new ScimError(400, scimType, detail);
  }
  static notFound(detail: string): ScimError {
    return new ScimError(404, undefined, detail);
  }
  static conflict(detail: string): ScimError {
    return new ScimError(409, 'uniqueness', detail);
  }
  static preconditionFailed(detail: string): ScimError {
    return new ScimError(412, undefined, detail);
  }
}
