/**
 * Admin API of automatic customer registration (use-case behaviour 31; docs/use-cases/registration.md),
 * under /admin/v1.
 *
 * Manufacturer side (src/sync/registration.ts):
 *   GET    /tenants/:tenant/registration                 the registration template (tenant admin)
 *   PUT    /tenants/:tenant/registration                 create (201) or replace (200) it
 *   DELETE /tenants/:tenant/registration                 remove it (204)
 *   POST   /tenants/:tenant/registrations                register a customer's endpoint: a client with
 *                                                        scope `register` registers itself (its id is the
 *                                                        customer); the admin names `customer`. 201 new, 200 again
 *   GET    /tenants/:tenant/registrations[/:customer]    the registered customers (tenant admin)
 *   DELETE /tenants/:tenant/registrations/:customer      remove one with its flow and connection (204)
 *
 * Customer side (src/sync/device-registration.ts), for the tenant admin:
 *   GET    /tenants/:tenant/manufacturers[/:id]
 *   PUT    /tenants/:tenant/manufacturers/:id            create (201) or change (200)
 *   DELETE /tenants/:tenant/manufacturers/:id            (204)
 *   POST   /tenants/:tenant/manufacturers/:id/register   register now (200; 502 when the manufacturer refuses)
 * Tokens are write-only: views say whether one is set.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOperator } from '../auth/scopes.ts';
import { ScimError } from '../scim/errors.ts';
import type { DeviceRegistration } from '../sync/device-registration.ts';
import { checkCustomer, type RegistrationService } from '../sync/registration.ts';
import { adminGuards, strictAdminBodies, type AdminGuardDeps } from './admin-guards.ts';

export interface AdminRegistrationRouteDeps extends AdminGuardDeps {
  registrations: RegistrationService;
  manufacturers: DeviceRegistration;
}

type TenantParams = { Params: { tenant: string } };
type Params = { Params: { tenant: string; id: string } };

const object = { type: 'object' } as const;
const templateBody = {
  type: 'object',
  additionalProperties: false,
  required: ['flow'],
  properties: { flow: object, connection: object, enabled: { type: 'boolean' } },
} as const;
const registrationBody = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl', 'token'],
  properties: {
    baseUrl: { type: 'string', minLength: 1, maxLength: 2000 },
    token: { type: 'string', minLength: 1, maxLength: 8000 },
    customer: { type: 'string', minLength: 1, maxLength: 60 },
  },
} as const;
const manufacturerBody = {
  type: 'object',
  additionalProperties: false,
  required: ['mudUrlPrefix', 'registrationUrl'],
  properties: {
    mudUrlPrefix: { type: 'string', minLength: 1, maxLength: 2000 },
    registrationUrl: { type: 'string', minLength: 1, maxLength: 2000 },
    token: { type: 'string', minLength: 1, maxLength: 8000 },
    scimBaseUrl: { type: ['string', 'null'], minLength: 1, maxLength: 2000 },
    clientId: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const;

export function adminRegistrationRoutes(deps: AdminRegistrationRouteDeps) {
  const { registrations, manufacturers } = deps;
  const guards = adminGuards(deps);
  const { asTenantAdmin } = guards;
  const json = (reply: FastifyReply, status: number, body: unknown) =>
    reply.code(status).type('application/json').send(body);
  /** A client of the tenant with scope register (or admin), or the operator. */
  const asRegistrant = {
    onRequest: async (request: FastifyRequest) => {
      const tenant = (request.params as { tenant: string }).tenant;
      const p = await guards.authenticate(request, tenant);
      request.adminPrincipal = p;
      const own = p.tenant === tenant && (p.scopes.has('register') || p.scopes.has('admin'));
      if (!own && !isOperator(p))
        throw new ScimError(
          403,
          undefined,
          `This credential may not register with tenant ${tenant} (needs scope register)`,
        );
    },
  };

  return async function routes(api: FastifyInstance): Promise<void> {
    strictAdminBodies(api);

    // ---- manufacturer side
    api.get<TenantParams>('/tenants/:tenant/registration', asTenantAdmin, async (request, reply) =>
      json(reply, 200, await registrations.getTemplate(request.params.tenant)),
    );
    api.put<TenantParams>(
      '/tenants/:tenant/registration',
      { ...asTenantAdmin, schema: { body: templateBody } },
      async (request, reply) => {
        const r = await registrations.putTemplate(request.params.tenant, request.body);
        return json(reply, r.created ? 201 : 200, r.view);
      },
    );
    api.delete<TenantParams>('/tenants/:tenant/registration', asTenantAdmin, async (request, reply) => {
      await registrations.deleteTemplate(request.params.tenant);
      return reply.code(204).send();
    });

    api.post<TenantParams & { Body: { baseUrl: string; token: string; customer?: string } }>(
      '/tenants/:tenant/registrations',
      { ...asRegistrant, schema: { body: registrationBody } },
      async (request, reply) => {
        const { tenant } = request.params;
        const p = request.adminPrincipal!;
        const isAdmin = isOperator(p) || (p.tenant === tenant && p.scopes.has('admin'));
        let customer: string;
        if (isAdmin) {
          if (request.body.customer === undefined)
            throw ScimError.badRequest(
              'invalidValue',
              'customer is required when an admin registers a customer',
            );
          customer = checkCustomer(request.body.customer);
        } else {
          customer = p.clientId;
          if (request.body.customer !== undefined && request.body.customer !== customer)
            throw new ScimError(
              403,
              undefined,
              `Client ${customer} may register itself only, not customer ${request.body.customer}`,
            );
        }
        const { customer: _c, ...body } = request.body;
        void _c;
        const r = await registrations.register(tenant, customer, body, p.clientId);
        request.log.info({ tenant, customer, new: r.new }, 'customer endpoint registered');
        const { new: isNew, ...view } = r;
        return json(reply, isNew ? 201 : 200, view);
      },
    );
    api.get<TenantParams>('/tenants/:tenant/registrations', asTenantAdmin, async (request, reply) =>
      json(reply, 200, { registrations: await registrations.list(request.params.tenant) }),
    );
    api.get<Params>('/tenants/:tenant/registrations/:id', asTenantAdmin, async (request, reply) =>
      json(reply, 200, await registrations.get(request.params.tenant, request.params.id)),
    );
    api.delete<Params>('/tenants/:tenant/registrations/:id', asTenantAdmin, async (request, reply) => {
      await registrations.unregister(request.params.tenant, request.params.id);
      return reply.code(204).send();
    });

    // ---- customer side
    api.get<TenantParams>('/tenants/:tenant/manufacturers', asTenantAdmin, async (request, reply) =>
      json(reply, 200, { manufacturers: await manufacturers.list(request.params.tenant) }),
    );
    api.get<Params>('/tenants/:tenant/manufacturers/:id', asTenantAdmin, async (request, reply) =>
      json(reply, 200, await manufacturers.get(request.params.tenant, request.params.id)),
    );
    api.put<Params>(
      '/tenants/:tenant/manufacturers/:id',
      { ...asTenantAdmin, schema: { body: manufacturerBody } },
      async (request, reply) => {
        const r = await manufacturers.put(request.params.tenant, request.params.id, request.body);
        return json(reply, r.created ? 201 : 200, r.view);
      },
    );
    api.delete<Params>('/tenants/:tenant/manufacturers/:id', asTenantAdmin, async (request, reply) => {
      await manufacturers.delete(request.params.tenant, request.params.id);
      return reply.code(204).send();
    });
    api.post<Params>('/tenants/:tenant/manufacturers/:id/register', asTenantAdmin, async (request, reply) =>
      json(reply, 200, await manufacturers.register(request.params.tenant, request.params.id)),
    );
  };
}
