/**
 * The import loop: reads a device list (CSV or JSON lines) in chunks, turns each row into a Device
 * body, and hands full batches to the store (ResourceService.createBatch: one transaction per
 * batch, multi-row statements, a savepoint per row only when the batch fails). The next batch is
 * read and validated while the previous one is being stored. Rows are reported in file order whatever stage refused them, each
 * with its row number (data rows from 1) and the file line it starts on.
 */
import { createReadStream, statSync } from 'node:fs';
import { ScimError } from '../scim/errors.ts';
import type { BatchCreateResult } from '../service/resources.ts';
import { CsvReader, type CsvRecord } from './csv.ts';
import { ColumnResolver, csvRowBody, InputError, isBlankRecord, jsonLineBody } from './mapping.ts';

export type ImportFormat = 'csv' | 'jsonl';

export interface RowError {
  row: number;
  line: number;
  status: number;
  scimType?: string;
  detail: string;
}

export interface ImportProgress {
  bytes: number;
  totalBytes: number;
  rows: number;
  failed: number;
}

export interface ImportSummary {
  rows: number;
  /** Rows that passed every check (stored, unless a dry run). */
  valid: number;
  imported: number;
  failed: number;
  seconds: number;
  /** Rows handled per second. */
  rate: number;
}

export interface ImportOptions {
  file: string;
  format: ImportFormat;
  resolver: ColumnResolver;
  dryRun: boolean;
  batchSize?: number;
  /**
   * Batches stored at the same time (default 1). Above 1, which of two rows of the file with the
   * same unique value wins is no longer the earlier one when they fall in different batches.
   */
  concurrency?: number;
  /**
   * Stores one batch; answers one result per body, in order. Called with up to `concurrency` + 1
   * batches unsettled: it must store them in call order, at most `concurrency` at a time.
   */
  createBatch: (bodies: unknown[]) => Promise<BatchCreateResult[]>;
  onError?: (e: RowError) => void | Promise<void>;
  onProgress?: (p: ImportProgress) => void;
}

export const DEFAULT_BATCH_SIZE = 500;

/** `.csv` → csv, `.jsonl` / `.ndjson` / `.json` → jsonl; anything else needs --format. */
export function formatOf(file: string): ImportFormat | undefined {
  const ext = /\.([^./\\]+)$/.exec(file)?.[1]?.toLowerCase();
  if (ext === 'csv') return 'csv';
  if (ext === 'jsonl' || ext === 'ndjson' || ext === 'json') return 'jsonl';
  return undefined;
}

interface PendingRow {
  row: number;
  line: number;
  body?: unknown;
  error?: ScimError;
}

function errorOf(err: unknown): ScimError {
  if (err instanceof ScimError) return err;
  throw err;
}

export async function runImport(opts: ImportOptions): Promise<ImportSummary> {
  const started = performance.now();
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  const totalBytes = statSync(opts.file).size;
  const stream = createReadStream(opts.file, { encoding: 'utf8', highWaterMark: 1 << 16 });
  const summary = { rows: 0, valid: 0, failed: 0 };
  let batch: PendingRow[] = [];

  // Batches in flight (each on a connection of its own), reported in file order as they finish.
  const concurrency = opts.concurrency ?? 1;
  const inFlight: Promise<() => Promise<void>>[] = [];
  const settle = async (): Promise<void> => {
    const report = await inFlight.shift()!;
    await report();
  };

  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    const rows = batch;
    batch = [];
    const sent = rows.filter((r) => r.error === undefined);
    const done = (sent.length ? opts.createBatch(sent.map((r) => r.body)) : Promise.resolve([])).then(
      (results) => async () => {
        sent.forEach((r, i) => {
          const res = results[i];
          if (!res.ok) r.error = res.error;
        });
        for (const r of rows) {
          if (!r.error) {
            summary.valid++;
            continue;
          }
          summary.failed++;
          const e: RowError = { row: r.row, line: r.line, status: r.error.status, detail: r.error.detail };
          if (r.error.scimType) e.scimType = r.error.scimType;
          await opts.onError?.(e);
        }
        opts.onProgress?.({
          bytes: stream.bytesRead,
          totalBytes,
          rows: summary.valid + summary.failed,
          failed: summary.failed,
        });
      },
    );
    // Awaited in turn by settle(); until then a failure must not count as unhandled.
    done.catch(() => undefined);
    inFlight.push(done);
    // One batch more than are stored at a time is handed over: it is read and validated while the
    // others wait on the database (createBatch stores in call order, `concurrency` at a time).
    if (inFlight.length > concurrency) await settle();
  };

  const add = async (line: number, make: () => unknown): Promise<void> => {
    const row: PendingRow = { row: ++summary.rows, line };
    try {
      row.body = make();
    } catch (err) {
      if (err instanceof InputError) throw err;
      row.error = errorOf(err);
    }
    batch.push(row);
    if (batch.length >= batchSize) await flush();
  };

  try {
    if (opts.format === 'csv') await readCsv(stream, opts.resolver, add);
    else await readJsonLines(stream, opts.resolver, add);
    await flush();
    while (inFlight.length) await settle();
  } finally {
    // A fatal error leaves other batches running: let them end before the store is closed.
    await Promise.allSettled(inFlight);
    stream.destroy();
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    ...summary,
    imported: opts.dryRun ? 0 : summary.valid,
    seconds: Math.round(seconds * 1000) / 1000,
    rate: seconds > 0 ? Math.round(summary.rows / seconds) : 0,
  };
}

type Add = (line: number, make: () => unknown) => Promise<void>;

async function readCsv(stream: AsyncIterable<string>, resolver: ColumnResolver, add: Add): Promise<void> {
  const reader = new CsvReader();
  let header: ReturnType<ColumnResolver['header']> | undefined;
  const handle = async (records: CsvRecord[]): Promise<void> => {
    for (const rec of records) {
      if (!header) {
        if (rec.error) throw new InputError(`the header (line ${rec.line}) is malformed: ${rec.error}`);
        header = resolver.header(rec.fields);
        continue;
      }
      if (!rec.error && isBlankRecord(rec.fields)) continue;
      const h = header;
      await add(rec.line, () => {
        if (rec.error) throw ScimError.badRequest('invalidSyntax', rec.error);
        return csvRowBody(h, rec.fields);
      });
    }
  };
  for await (const chunk of stream) await handle(reader.push(chunk));
  await handle(reader.end());
  if (!header) throw new InputError('the file is empty: a header row is required');
}

async function readJsonLines(
  stream: AsyncIterable<string>,
  resolver: ColumnResolver,
  add: Add,
): Promise<void> {
  let carry = '';
  let lineNo = 0;
  const handle = async (text: string): Promise<void> => {
    lineNo++;
    const line = (lineNo === 1 ? text.replace(/^\uFEFF/, '') : text).replace(/\r$/, '');
    if (line.trim() === '') return;
    await add(lineNo, () => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw ScimError.badRequest('invalidSyntax', `not JSON: ${(err as Error).message}`);
      }
      return jsonLineBody(value, resolver);
    });
  };
  for await (const chunk of stream) {
    const parts = (carry + chunk).split('\n');
    carry = parts.pop()!;
    for (const p of parts) await handle(p);
  }
  if (carry !== '') await handle(carry);
}
