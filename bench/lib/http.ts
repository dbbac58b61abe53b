/**
 * A sequential HTTP client over one keep-alive connection, for latency series (one request at a
 * time, so the figure is the server's latency rather than queueing).
 */
import http from 'node:http';
import https from 'node:https';

/** A client certificate (and the CA the server certificate is checked against), PEM. */
export interface ClientTls {
  cert?: string | Buffer;
  key?: string | Buffer;
  ca: string | Buffer;
}

export interface Response {
  status: number;
  body: string;
  ms: number;
}

export class Client {
  private readonly agent: http.Agent;

  /** Without a token no Authorization header is sent (a TLS client certificate may authenticate). */
  constructor(
    readonly port: number,
    private readonly token: string | undefined,
    private readonly tls?: ClientTls,
  ) {
    this.agent = tls
      ? new https.Agent({ keepAlive: true, maxSockets: 1, ...tls })
      : new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  request(method: string, path: string, body?: unknown): Promise<Response> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { accept: 'application/scim+json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (payload) {
      headers['content-type'] = 'application/scim+json';
      headers['content-length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const req = (this.tls ? https : http).request(
        { host: '127.0.0.1', port: this.port, method, path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks).toString(),
              ms: performance.now() - start,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.setTimeout(120_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  /** A request that must answer `expected`; anything else is a server bug worth reporting verbatim. */
  async expect(method: string, path: string, expected: number, body?: unknown): Promise<Response> {
    const res = await this.request(method, path, body);
    if (res.status !== expected) {
      const sent = body === undefined ? '' : `\nrequest body: ${JSON.stringify(body).slice(0, 2000)}`;
      throw new Error(
        `${method} ${path} answered ${res.status}, expected ${expected}${sent}\nresponse: ${res.body.slice(0, 2000)}`,
      );
    }
    return res;
  }

  close(): void {
    this.agent.destroy();
  }
}
