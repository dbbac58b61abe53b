/**
 * Server configuration: defaults, then environment variables (the contract in design.md:
 * PORT, SCIMD_ADMIN_TOKEN, SCIMD_DATA_DIR, DATABASE_URL), then explicit options (CLI flags, tests).
 */
export interface LimitsConfig {
  /** Bulk: most operations in one request, largest request body in bytes (advertised in SPC). */
  bulkMaxOperations: number;
  bulkMaxPayloadSize: number;
  /** Largest body accepted by any other endpoint, in bytes. */
  maxBodySize: number;
  /** filter.maxResults: the most resources one list response may hold. */
  filterMaxResults: number;
  defaultPageSize: number;
  maxPageSize: number;
  /** Seconds a cursor stays valid (RFC 9865 cursorTimeout). */
  cursorTimeout: number;
  /** Days the change log is kept (delta tokens older than this ask for a full pull); fractions allowed. */
  changeRetentionDays: number;
}

export interface AppConfig extends LimitsConfig {
  port: number;
  host: string;
  /** PostgreSQL server connection string; when unset the embedded store is used. */
  databaseUrl?: string;
  /** Folder of the embedded store. */
  dataDir: string;
  /** Embedded store in memory (tests): nothing is written to disk. */
  memory: boolean;
  /** Bootstrap bearer token with full rights on the default tenant. */
  adminToken?: string;
  /** Public base URL (scheme://host[:port]); when unset it is taken from each request's Host header. */
  baseUrl?: string;
  logLevel: string;
  /** Node-wide default request rate limit per client (tenants and clients may set their own). */
  rateLimit?: { max: number; windowSeconds: number };
  /** HTTPS: PEM files of the server certificate and key; with tlsClientCa, client certificates are requested. */
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  /** With TLS: a plain-HTTP port that answers every request 308 to the https URL (src/http/redirect.ts). */
  httpRedirectPort?: number;
  /** Sync connections must use https (and https OAuth token URLs), except to loopback hosts. */
  syncRequireTls: boolean;
  /** Seconds between reads of the sync flows' schedules (a schedule changed on another node). */
  syncScheduleReloadSeconds: number;
  /** Run background workers (event publishing and delivery); tests may turn them off and step them. */
  backgroundWorkers: boolean;
  /** Received events (src/events/inbound): milliseconds between applier passes when not woken. */
  inboundApplyIntervalMs: number;
  /** Attempts to apply a received event before it is marked failed. */
  inboundMaxAttempts: number;
  /** First retry delay of a received event that failed to apply (doubled per attempt). */
  inboundRetryBaseMs: number;
  /** How often the poll client re-reads which upstreams to poll. */
  inboundPollRefreshSeconds: number;
  /** Event publisher: milliseconds between rounds that turn the change log into outbox SETs. */
  eventPublishIntervalMs: number;
  /** RFC 8936 long poll: seconds a poll with nothing pending is held before it answers {"sets":{}}. */
  eventPollTimeoutSeconds: number;
  /** RFC 8935 push retries: exponential backoff from base to cap (ms, with jitter). */
  eventPushBackoffBaseMs: number;
  eventPushBackoffCapMs: number;
  /** RFC 8935 push: timeout of one POST to a receiver (ms), and receivers delivered in parallel. */
  eventPushTimeoutMs: number;
  eventPushConcurrency: number;
  /** Days a delivered SET stays in the outbox (listing, counts) before the hourly pruning removes it. */
  eventOutboxRetentionDays: number;
}

export const DEFAULT_LIMITS: LimitsConfig = {
  bulkMaxOperations: 1000,
  bulkMaxPayloadSize: 4 * 1024 * 1024,
  maxBodySize: 1024 * 1024,
  filterMaxResults: 1000,
  defaultPageSize: 100,
  maxPageSize: 1000,
  cursorTimeout: 3600,
  changeRetentionDays: 30,
};

export function loadConfig(
  overrides: Partial<AppConfig> = {},
  env: NodeJS.ProcessEnv = process.env,
): AppConfig {
  const fromEnv: Partial<AppConfig> = {};
  if (env.PORT) fromEnv.port = Number(env.PORT);
  if (env.HOST) fromEnv.host = env.HOST;
  if (env.DATABASE_URL) fromEnv.databaseUrl = env.DATABASE_URL;
  if (env.SCIMD_DATA_DIR) fromEnv.dataDir = env.SCIMD_DATA_DIR;
  if (env.SCIMD_ADMIN_TOKEN) fromEnv.adminToken = env.SCIMD_ADMIN_TOKEN;
  if (env.SCIMD_BASE_URL) fromEnv.baseUrl = env.SCIMD_BASE_URL;
  if (env.SCIMD_LOG_LEVEL) fromEnv.logLevel = env.SCIMD_LOG_LEVEL;
  if (env.SCIMD_RATE_LIMIT_MAX) {
    fromEnv.rateLimit = {
      max: Number(env.SCIMD_RATE_LIMIT_MAX),
      windowSeconds: Number(env.SCIMD_RATE_LIMIT_WINDOW ?? 60),
    };
  }
  if (env.SCIMD_CHANGE_RETENTION_DAYS) fromEnv.changeRetentionDays = Number(env.SCIMD_CHANGE_RETENTION_DAYS);
  if (env.SCIMD_EVENT_POLL_TIMEOUT_SECONDS)
    fromEnv.eventPollTimeoutSeconds = Number(env.SCIMD_EVENT_POLL_TIMEOUT_SECONDS);
  if (env.SCIMD_EVENT_PUSH_BACKOFF_BASE_MS)
    fromEnv.eventPushBackoffBaseMs = Number(env.SCIMD_EVENT_PUSH_BACKOFF_BASE_MS);
  if (env.SCIMD_EVENT_PUSH_BACKOFF_CAP_MS)
    fromEnv.eventPushBackoffCapMs = Number(env.SCIMD_EVENT_PUSH_BACKOFF_CAP_MS);
  if (env.SCIMD_EVENT_PUSH_TIMEOUT_MS) fromEnv.eventPushTimeoutMs = Number(env.SCIMD_EVENT_PUSH_TIMEOUT_MS);
  if (env.SCIMD_EVENT_PUSH_CONCURRENCY)
    fromEnv.eventPushConcurrency = Number(env.SCIMD_EVENT_PUSH_CONCURRENCY);
  if (env.SCIMD_EVENT_PUBLISH_INTERVAL_MS)
    fromEnv.eventPublishIntervalMs = Number(env.SCIMD_EVENT_PUBLISH_INTERVAL_MS);
  if (env.SCIMD_EVENT_OUTBOX_RETENTION_DAYS)
    fromEnv.eventOutboxRetentionDays = Number(env.SCIMD_EVENT_OUTBOX_RETENTION_DAYS);
  if (env.SCIMD_TLS_CERT) fromEnv.tlsCert = env.SCIMD_TLS_CERT;
  if (env.SCIMD_TLS_KEY) fromEnv.tlsKey = env.SCIMD_TLS_KEY;
  if (env.SCIMD_TLS_CLIENT_CA) fromEnv.tlsClientCa = env.SCIMD_TLS_CLIENT_CA;
  if (env.SCIMD_HTTP_REDIRECT_PORT) fromEnv.httpRedirectPort = Number(env.SCIMD_HTTP_REDIRECT_PORT);
  if (env.SCIMD_SYNC_REQUIRE_TLS)
    fromEnv.syncRequireTls = envFlag(env.SCIMD_SYNC_REQUIRE_TLS, 'SCIMD_SYNC_REQUIRE_TLS');
  if (env.SCIMD_SYNC_SCHEDULE_RELOAD_SECONDS)
    fromEnv.syncScheduleReloadSeconds = Number(env.SCIMD_SYNC_SCHEDULE_RELOAD_SECONDS);
  if (env.SCIMD_INBOUND_APPLY_INTERVAL_MS)
    fromEnv.inboundApplyIntervalMs = Number(env.SCIMD_INBOUND_APPLY_INTERVAL_MS);
  if (env.SCIMD_INBOUND_MAX_ATTEMPTS) fromEnv.inboundMaxAttempts = Number(env.SCIMD_INBOUND_MAX_ATTEMPTS);
  if (env.SCIMD_INBOUND_RETRY_BASE_MS) fromEnv.inboundRetryBaseMs = Number(env.SCIMD_INBOUND_RETRY_BASE_MS);
  if (env.SCIMD_INBOUND_POLL_REFRESH_SECONDS)
    fromEnv.inboundPollRefreshSeconds = Number(env.SCIMD_INBOUND_POLL_REFRESH_SECONDS);
  const config: AppConfig = {
    port: 8080,
    host: '0.0.0.0',
    dataDir: './data',
    memory: false,
    logLevel: 'info',
    backgroundWorkers: true,
    syncRequireTls: false,
    syncScheduleReloadSeconds: 30,
    inboundApplyIntervalMs: 1000,
    inboundMaxAttempts: 5,
    inboundRetryBaseMs: 1000,
    inboundPollRefreshSeconds: 30,
    eventPublishIntervalMs: 200,
    eventPollTimeoutSeconds: 30,
    eventPushBackoffBaseMs: 1000,
    eventPushBackoffCapMs: 600_000,
    eventPushTimeoutMs: 10_000,
    eventPushConcurrency: 8,
    eventOutboxRetentionDays: 7,
    ...DEFAULT_LIMITS,
    ...fromEnv,
    ...dropUndefined(overrides),
  };
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) {
    throw new Error(`PORT must be an integer between 0 and 65535, got ${String(config.port)}`);
  }
  if (config.rateLimit && !(config.rateLimit.max > 0 && config.rateLimit.windowSeconds > 0)) {
    throw new Error('SCIMD_RATE_LIMIT_MAX and SCIMD_RATE_LIMIT_WINDOW must be positive numbers');
  }
  if (!(config.changeRetentionDays > 0)) {
    throw new Error('SCIMD_CHANGE_RETENTION_DAYS must be a positive number of days');
  }
  if (!(config.eventPollTimeoutSeconds > 0 && config.eventPollTimeoutSeconds <= 3600)) {
    throw new Error('SCIMD_EVENT_POLL_TIMEOUT_SECONDS must be a number of seconds above 0, at most 3600');
  }
  if (!(config.eventPushBackoffBaseMs > 0 && config.eventPushBackoffCapMs >= config.eventPushBackoffBaseMs)) {
    throw new Error(
      'SCIMD_EVENT_PUSH_BACKOFF_BASE_MS must be positive and at most SCIMD_EVENT_PUSH_BACKOFF_CAP_MS',
    );
  }
  if (!(config.eventPushTimeoutMs > 0)) throw new Error('SCIMD_EVENT_PUSH_TIMEOUT_MS must be positive');
  if (!(Number.isInteger(config.eventPushConcurrency) && config.eventPushConcurrency >= 1)) {
    throw new Error('SCIMD_EVENT_PUSH_CONCURRENCY must be a positive integer');
  }
  if (!(config.eventPublishIntervalMs > 0)) {
    throw new Error('SCIMD_EVENT_PUBLISH_INTERVAL_MS must be a positive number of milliseconds');
  }
  if (
    !(config.inboundApplyIntervalMs > 0) ||
    !(Number.isInteger(config.inboundMaxAttempts) && config.inboundMaxAttempts >= 1) ||
    !(config.inboundRetryBaseMs > 0) ||
    !(config.inboundPollRefreshSeconds > 0)
  ) {
    throw new Error(
      'SCIMD_INBOUND_APPLY_INTERVAL_MS, SCIMD_INBOUND_RETRY_BASE_MS and SCIMD_INBOUND_POLL_REFRESH_SECONDS must be positive, SCIMD_INBOUND_MAX_ATTEMPTS an integer >= 1',
    );
  }
  if (!(config.eventOutboxRetentionDays > 0)) {
    throw new Error('SCIMD_EVENT_OUTBOX_RETENTION_DAYS must be a positive number of days');
  }
  if (!!config.tlsCert !== !!config.tlsKey) throw new Error('TLS needs both a certificate and a key');
  if (config.tlsClientCa && !config.tlsCert)
    throw new Error('A client CA needs TLS (a certificate and a key)');
  if (config.httpRedirectPort !== undefined) {
    const p = config.httpRedirectPort;
    if (!Number.isInteger(p) || p < 0 || p > 65535)
      throw new Error(`SCIMD_HTTP_REDIRECT_PORT must be an integer between 0 and 65535, got ${String(p)}`);
    if (!config.tlsCert)
      throw new Error('SCIMD_HTTP_REDIRECT_PORT needs TLS (SCIMD_TLS_CERT and SCIMD_TLS_KEY)');
    if (p !== 0 && p === config.port) throw new Error('SCIMD_HTTP_REDIRECT_PORT must differ from PORT');
  }
  if (!(config.syncScheduleReloadSeconds >= 1 && config.syncScheduleReloadSeconds <= 3600)) {
    throw new Error('SCIMD_SYNC_SCHEDULE_RELOAD_SECONDS must be a number of seconds from 1 to 3600');
  }
  return config;
}

/** A boolean environment variable: true/1/yes or false/0/no. */
function envFlag(v: string, name: string): boolean {
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  throw new Error(`${name} must be true or false, got ${v}`);
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
