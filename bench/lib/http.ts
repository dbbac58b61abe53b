/**
 * A sequential HTTP client over one keep-alive connection, for latency series (one request at a
 * time, so the figure is the server's latency rather than queueing).
 */
import http from 'node:http';

export interface Response {
  status: number;
  body: string;
  ms: number;
}

export class Client {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  constructor(
    readonly port: number,
    private readonly token: string,
  ) {}

  request(method: string, path: string, body?: unknown): Promise<Response> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = {
      authorization: `Bearer ${this.token}`,
      accept: 'application/scim+json',
    };
    if (payload) {
      headers['content-type'] = 'application/scim+json';
      headers['content-length'] = payload.length;
    }
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const req = http.request(
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
