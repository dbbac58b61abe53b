/**
 * A streaming RFC 4180 reader: fields separated by commas, records by line ends, fields in double
 * quotes may hold commas, line ends and doubled quotes (""). Text arrives in chunks of any size,
 * so a quoted field or a CRLF may be cut anywhere; each record carries the line it starts on.
 *
 * Lenient where files in the wild are: LF alone ends a record as CRLF does, a quote inside an
 * unquoted field is kept as a character. A character after a closing quote other than a comma or a
 * line end, and a quote left open at the end of the file, make that record an error (the rest of
 * the file is still read).
 */

export interface CsvRecord {
  fields: string[];
  /** 1-based line of the file the record starts on. */
  line: number;
  /** Set when the record is malformed; fields are then unusable. */
  error?: string;
}

type State = 'fieldStart' | 'unquoted' | 'quoted' | 'quoteInQuoted' | 'afterQuoted';

export class CsvReader {
  private state: State = 'fieldStart';
  private field = '';
  private fields: string[] = [];
  private line = 1;
  private recordLine = 1;
  private error: string | undefined;
  /** Whether the current record has any content yet (an empty line is no record). */
  private started = false;

  /** Feeds a chunk; returns the records it completed. */
  push(chunk: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      switch (this.state) {
        case 'fieldStart':
        case 'unquoted':
          if (c === ',') {
            this.started = true;
            this.endField();
          } else if (c === '\n') {
            this.endRecord(out);
            this.line++;
            this.recordLine = this.line;
          } else if (c === '\r') {
            // Part of a CRLF (or a stray CR): never field content outside quotes.
          } else if (c === '"' && this.state === 'fieldStart') {
            this.started = true;
            this.state = 'quoted';
          } else {
            this.started = true;
            this.field += c;
            this.state = 'unquoted';
          }
          break;
        case 'quoted':
          if (c === '"') this.state = 'quoteInQuoted';
          else {
            if (c === '\n') this.line++;
            this.field += c;
          }
          break;
        case 'quoteInQuoted':
          if (c === '"') {
            this.field += '"';
            this.state = 'quoted';
          } else {
            // The quote closed the field: c is the first character after it.
            this.state = 'afterQuoted';
            this.afterQuoted(c, out);
          }
          break;
        case 'afterQuoted':
          this.afterQuoted(c, out);
          break;
      }
    }
    return out;
  }

  /** Ends the input; returns the last record if the file does not end with a line end. */
  end(): CsvRecord[] {
    const out: CsvRecord[] = [];
    if (this.state === 'quoted') {
      this.error ??= `a quoted field opened on line ${this.recordLine} is not closed at the end of the file`;
      this.started = true;
    }
    this.endRecord(out);
    return out;
  }

  private afterQuoted(c: string, out: CsvRecord[]): void {
    if (c === ',') this.endField();
    else if (c === '\n') {
      this.endRecord(out);
      this.line++;
      this.recordLine = this.line;
    } else if (c !== '\r') {
      this.error ??= `unexpected character ${JSON.stringify(c)} after a closing quote (line ${this.line})`;
    }
  }

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.state = 'fieldStart';
  }

  private endRecord(out: CsvRecord[]): void {
    if (this.started) {
      this.endField();
      const record: CsvRecord = { fields: this.fields, line: this.recordLine };
      if (this.error) record.error = this.error;
      out.push(record);
    }
    this.fields = [];
    this.field = '';
    this.state = 'fieldStart';
    this.error = undefined;
    this.started = false;
  }
}

/** Parses a whole CSV text (small inputs, tests). */
export function parseCsv(text: string): CsvRecord[] {
  const reader = new CsvReader();
  return [...reader.push(text), ...reader.end()];
}
