/**
 * Test helpers for the client: a transport that records every exchange, and small fake SCIM
 * servers (node:http) whose answers each test scripts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  NodeTransport,
  type HttpRequest,
  type HttpResponse,
  type Transport,
} from '../../src/client/transport.ts';

export interface Recorded {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: Record<string, string>;
  body: unknown;
  status?: number;
}

/** The real node transport, with each request and its answer status recorded. */
export function recordingTransport(): { transport: Transport; log: Recorded[]; close(): void } {
  const inner = new NodeTransport();
  const log: Recorded[] = [];
  const transport: Transport = async (req: HttpRequest): Promise<HttpResponse> => {
    const entry: Recorded = {
      method: req.method,
      url: `${req.url.pathname}${req.url.search}`,
      headers: req.headers,
      body: req.body === undefined ? undefined : JSON.parse(req.body),
    };
    log.push(entry);
    const res = await inner.send(req);
    entry.status = res.status;
    return res;
  };
  return { transport, log, close: () => inner.close() };
}

export interface FakeRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface FakeReply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Destroy the connection without an answer (a network failure after the request was sent). */
  drop?: boolean;
  /** Answer after this many ms (timeouts). */
  delayMs?: number;
}

export type FakeHandler = (req: FakeRequest) => FakeReply | undefined;

export interface FakeServer {
  url: string;
  requests: FakeRequest[];
  close(): Promise<void>;
}

export const SPC_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
export const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

/** A ServiceProviderConfig with everything off unless given. */
export function spc(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemas: [SPC_SCHEMA],
    patch: { supported: false },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: false, maxResults: 0 },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [],
    ...over,
  };
}

export const USER_RT = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
  id: 'User',
  name: 'User',
  endpoint: '/Users',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:User',
  schemaExtensions: [],
};
export const GROUP_RT = {
  ...USER_RT,
  id: 'Group',
  name: 'Group',
  endpoint: '/Groups',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Group',
};

export function list(resources: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { schemas: [LIST], totalResults: resources.length, Resources: resources, ...extra };
}

/**
 * A fake SCIM server at /scim: discovery answered from `discovery` (unless the handler answers),
 * everything else by `handler`; unanswered requests get 500.
 */
export async function fakeServer(
  handler: FakeHandler,
  discovery: { spc?: Record<string, unknown>; resourceTypes?: unknown[]; schemas?: unknown[] } = {},
): Promise<FakeServer> {
  const requests: FakeRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fr: FakeRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(fr);
      let reply = handler(fr);
      if (!reply) {
        if (fr.url === '/scim/ServiceProviderConfig') reply = { status: 200, body: discovery.spc ?? spc() };
        else if (fr.url === '/scim/ResourceTypes')
          reply = { status: 200, body: list(discovery.resourceTypes ?? [USER_RT, GROUP_RT]) };
        else if (fr.url === '/scim/Schemas') reply = { status: 200, body: list(discovery.schemas ?? []) };
        else reply = { status: 500, body: { detail: `unscripted ${fr.method} ${fr.url}` } };
      }
      const r = reply;
      const send = () => {
        if (r.drop) {
          req.socket.destroy();
          return;
        }
        const headers: Record<string, string> = { ...r.headers };
        if (r.body !== undefined) headers['content-type'] ??= 'application/scim+json';
        res.writeHead(r.status, headers);
        res.end(
          r.body === undefined ? undefined : typeof r.body === 'string' ? r.body : JSON.stringify(r.body),
        );
      };
      if (r.delayMs) setTimeout(send, r.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/scim`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Requests other than the discovery documents. */
export function calls(s: FakeServer): FakeRequest[] {
  return s.requests.filter((r) => !/^\/scim\/(ServiceProviderConfig|ResourceTypes|Schemas)$/.test(r.url));
}
