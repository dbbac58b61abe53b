/**
 * One HTTP exchange over node:http / node:https. The client uses Node's own stack rather than the
 * global fetch because mTLS needs an Agent with a client certificate (undici's Agent is not a
 * dependency of this project, and Node 20's bundled undici cannot be imported), and because the
 * retry policy must know whether a failed request could have reached the server: a connect error
 * means nothing was sent, anything later may have been.
 */
import http from 'node:http';
import https from 'node:https';
import { ScimNetworkError, type ResponseHeaders } from './errors.ts';

export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
  /** Whole exchange (connect, send, response body) must finish within this many milliseconds. */
  timeoutMs: number;
}

export interface HttpResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: ResponseHeaders;
  body: string;
}

export type Transport = (req: HttpRequest) => Promise<HttpResponse>;

export interface TlsOptions {
  /** PEM client certificate (chain) for mutual TLS. */
  cert?: string | Buffer;
  /** PEM private key of the client certificate. */
  key?: string | Buffer;
  /** PEM CA certificate(s) to trust for the server instead of the system store. */
  ca?: string | Buffer | Array<string | Buffer>;
  passphrase?: string;
  /** Default true. Turning it off is for tests only. */
  rejectUnauthorized?: boolean;
  /** SNI / certificate name to check when it differs from the URL host. */
  servername?: string;
}

/** A keep-alive transport; `close()` drops its pooled sockets. */
export class NodeTransport {
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent: https.Agent;

  constructor(tls: TlsOptions = {}) {
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      passphrase: tls.passphrase,
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
      servername: tls.servername,
    });
  }

  readonly send: Transport = (req) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const secure = req.url.protocol === 'https:';
      const mod = secure ? https : http;
      const where = `${req.method} ${req.url.toString()}`;
      let sent = false;
      let timedOut = false;
      const headers: Record<string, string> = { ...req.headers };
      if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
      const r = mod.request(req.url, {
        method: req.method,
        headers,
        agent: secure ? this.httpsAgent : this.httpAgent,
      });
      const timer = setTimeout(() => {
        timedOut = true;
        r.destroy(new Error(`timed out after ${req.timeoutMs} ms`));
      }, req.timeoutMs);
      r.on('socket', (socket) => {
        // A reused keep-alive socket is already connected: the request goes out at once.
        const connecting = (socket as { connecting?: boolean }).connecting;
        if (!connecting) sent = true;
        else socket.once(secure ? 'secureConnect' : 'connect', () => (sent = true));
      });
      r.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new ScimNetworkError(
            `${where}: ${timedOut ? `timed out after ${req.timeoutMs} ms` : err.message}`,
            req.method,
            req.url.toString(),
            sent,
            timedOut,
            timedOut ? 'ETIMEDOUT' : err.code,
          ),
        );
      });
      r.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => r.destroy(err));
        res.on('end', () => {
          clearTimeout(timer);
          const out: ResponseHeaders = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: out,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
      });
      r.end(req.body);
    });

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
