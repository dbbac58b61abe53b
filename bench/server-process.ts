/**
 * A server under load, in its own process so that it and the load generator each get a core.
 * BENCH_SERVER_SPEC is a JSON ServerSpec. Prints `LISTENING <port>` once it accepts connections, and shuts
 * down cleanly on SIGTERM (the PGlite folder must be closed before the parent removes it).
 */
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { createApp } from '../src/app.ts';

/** PEM files: HTTPS, and with clientCa client certificates are requested (as scimd's tlsClientCa). */
export interface TlsFiles {
  cert: string;
  key: string;
  clientCa?: string;
}

export type ServerSpec =
  | { kind: 'hello'; tls?: TlsFiles }
  | { kind: 'scimd'; adminToken: string; dataDir?: string; databaseUrl?: string; tls?: TlsFiles };

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.BENCH_SERVER_SPEC ?? '{}') as ServerSpec;
  let server: FastifyInstance;
  let close: () => Promise<void>;
  if (spec.kind === 'hello') {
    // The TLS baseline: the same handler behind the same handshake and record layer as scimd's HTTPS.
    const https = spec.tls ? { cert: readFileSync(spec.tls.cert), key: readFileSync(spec.tls.key) } : null;
    server = (https ? Fastify({ logger: false, https }) : Fastify({ logger: false })) as FastifyInstance;
    server.get('/', async () => ({ hello: 'world' }));
    close = () => server.close();
  } else {
    const app = await createApp({
      port: 0,
      host: '127.0.0.1',
      adminToken: spec.adminToken,
      logLevel: 'silent',
      dataDir: spec.dataDir,
      databaseUrl: spec.databaseUrl,
      tlsCert: spec.tls?.cert,
      tlsKey: spec.tls?.key,
      tlsClientCa: spec.tls?.clientCa,
    });
    server = app.server;
    close = () => app.close();
  }
  await server.listen({ port: 0, host: '127.0.0.1' });
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent going away (even killed) closes our stdin: do not outlive it.
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.stdout.write(`LISTENING ${address.port}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
