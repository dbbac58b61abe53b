/**
 * The enterprise gateway's question (draft-ietf-scim-device-model §"endpointAppsExt"): an
 * application presents a clientToken or a certificate at the gateway's endpoints; which
 * EndpointApp is it, and which devices may it reach? Answered from the store, per tenant.
 */
import { ScimError } from '../scim/errors.ts';
import type { JsonObject } from '../scim/json.ts';
import { ENDPOINT_APPS_EXT_SCHEMA } from '../scim/schema/device-schemas.ts';
import type { Database } from '../store/db.ts';
import { secretDigest } from '../service/resources.ts';
import { CLIENT_TOKEN } from './behaviour.ts';

export interface GatewayQuery {
  clientToken?: string;
  /** Subject name of the certificate the application presented (as in certificateInfo.subjectName). */
  subjectName?: string;
  startIndex: number;
  count: number;
}

export interface GatewayAnswer {
  endpointApp: { id: string; applicationName?: string; applicationType?: string };
  totalDevices: number;
  startIndex: number;
  devices: { id: string; displayName?: string; active?: boolean }[];
}

export class GatewayService {
  constructor(private readonly db: Database) {}

  async verify(tenant: string, q: GatewayQuery): Promise<GatewayAnswer> {
    if (!!q.clientToken === !!q.subjectName) {
      throw ScimError.badRequest('invalidValue', 'Give exactly one of clientToken and subjectName');
    }
    const app = q.clientToken
      ? await this.db.query<{ id: string; doc: JsonObject }>(
          `SELECT r.id, r.doc FROM resource_secrets s JOIN resources r ON r.tenant_id = s.tenant_id AND r.id = s.resource_id
           WHERE s.tenant_id = $1 AND s.name = $2 AND s.digest = $3 AND r.resource_type = 'EndpointApp'`,
          [tenant, CLIENT_TOKEN, secretDigest(q.clientToken)],
        )
      : await this.db.query<{ id: string; doc: JsonObject }>(
          `SELECT r.id, r.doc FROM resources r
           WHERE r.tenant_id = $1 AND r.resource_type = 'EndpointApp' AND r.doc -> 'certificateInfo' ->> 'subjectName' = $2
           ORDER BY r.id LIMIT 1`,
          [tenant, q.subjectName],
        );
    const found = app.rows[0];
    if (!found) throw ScimError.notFound('No EndpointApp of this tenant has this token or certificate');
    const containment = JSON.stringify({
      [ENDPOINT_APPS_EXT_SCHEMA]: { applications: [{ value: found.id }] },
    });
    const total = await this.db.query<{ n: number | string }>(
      `SELECT count(*) AS n FROM resources r WHERE r.tenant_id = $1 AND r.resource_type = 'Device' AND r.doc @> $2::jsonb`,
      [tenant, containment],
    );
    const devices = await this.db.query<{ id: string; doc: JsonObject }>(
      `SELECT r.id, r.doc FROM resources r WHERE r.tenant_id = $1 AND r.resource_type = 'Device' AND r.doc @> $2::jsonb
       ORDER BY r.id LIMIT $3 OFFSET $4`,
      [tenant, containment, q.count, q.startIndex - 1],
    );
    const endpointApp: GatewayAnswer['endpointApp'] = { id: found.id };
    if (typeof found.doc.applicationName === 'string')
      endpointApp.applicationName = found.doc.applicationName;
    if (typeof found.doc.applicationType === 'string')
      endpointApp.applicationType = found.doc.applicationType;
    return {
      endpointApp,
      totalDevices: Number(total.rows[0].n),
      startIndex: q.startIndex,
      devices: devices.rows.map((d) => {
        const v: GatewayAnswer['devices'][number] = { id: d.id };
        if (typeof d.doc.displayName === 'string') v.displayName = d.doc.displayName;
        if (typeof d.doc.active === 'boolean') v.active = d.doc.active;
        return v;
      }),
    };
  }
}
