/**
 * The optional plain-HTTP listener of a TLS node (SCIMD_HTTP_REDIRECT_PORT, use-case behaviour 47):
 * it answers every request `308 Permanent Redirect` to the same path on the HTTPS origin and never
 * serves data. It has no access to the store or the SCIM routes; the request body is not read.
 *
 * The HTTPS origin is SCIMD_BASE_URL when that is an https URL, else `https://<Host header's
 * host>:<the HTTPS port>`. A request without a usable Host header gets a 400 with a short text.
 * A client that sent a bearer token over plain HTTP has already exposed it: the redirect only
 * spares browsers and humans a dead end, API clients should be configured with the https URL.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpRedirectOptions {
  port: number;
  host: string;
  /** The port the HTTPS server listens on (used with the Host header when baseUrl is not https). */
  httpsPort: number;
  /** SCIMD_BASE_URL: the public origin, used when it is https. */
  baseUrl?: string;
}

export interface HttpRedirect {
  /** http://host:port as listened on. */
  address: string;
  close(): Promise<void>;
}

/** Where a plain-HTTP request is sent: the https URL, or undefined when the Host header is unusable. */
export function redirectTarget(
  req: Pick<IncomingMessage, 'url' | 'headers'>,
  opts: Pick<HttpRedirectOptions, 'httpsPort' | 'baseUrl'>,
): string | undefined {
  let path = req.url ?? '/';
  // absolute-form (a proxy request): keep the path and query only.
  if (!path.startsWith('/')) {
    try {
      const u = new URL(path);
      path = u.pathname + u.search;
    } catch {
      path = '/';
    }
  }
  if (opts.baseUrl?.startsWith('https://')) return opts.baseUrl.replace(/\/+$/, '') + path;
  const host = req.headers.host;
  if (typeof host !== 'string' || !/^[A-Za-z0-9.\-[\]:]{1,300}$/.test(host)) return undefined;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return undefined;
  }
  if (hostname === '') return undefined;
  const port = opts.httpsPort === 443 ? '' : `:${opts.httpsPort}`;
  return `https://${hostname}${port}${path}`;
}

export async function startHttpRedirect(opts: HttpRedirectOptions): Promise<HttpRedirect> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const target = redirectTarget(req, opts);
    // The body is never read: the connection is closed after the answer.
    res.setHeader('connection', 'close');
    res.setHeader('cache-control', 'no-store');
    if (!target) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('This server answers over HTTPS only.\n');
      return;
    }
    res.writeHead(308, { location: target, 'content-length': '0' });
    res.end();
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    address: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
