// How the config report words a problem: the path in the file (services[0].backends[1].port), the value as
// shown, and for the schema's findings (ajv) what the schema expects there. The loader (load.ts) adds each
// problem's line and column. Pure.
import Ajv, { type ErrorObject } from 'ajv';
import { configSchema } from './schema';
import { OptionError, Subject } from './options';

export type PathSeg = string | number;

/**
 * Reports a problem at a path in the file: a phrase ("got 0, expected ..."), which the report prefixes with the
 * path, or a value parser's error, which names the path itself (see parsing()).
 */
export type Add = (path: PathSeg[], problem: string | OptionError) => void;

export function formatPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out || '(top level)';
}

/**
 * What a value parser (src/config/address-syntax.ts) makes of the value at `path`, which it names in its errors, or
 * undefined once its error is reported.
 */
export function parsing<T>(add: Add, path: PathSeg[], parse: (s: Subject) => T): T | undefined {
  try {
    return parse(Subject.key(formatPath(path)));
  } catch (e) {
    if (!(e instanceof OptionError)) throw e;
    add(path, e);
    return undefined;
  }
}

/** A value as the report shows it: scalars as JSON (cut at 60 characters), containers by kind. */
export function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

type Schema = Record<string, unknown>;

function expectOf(s: Schema): string {
  if (typeof s['x-expect'] === 'string') return s['x-expect'];
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((x) => JSON.stringify(x)).join(', ')}`;
  const t = s.type;
  if (t === 'integer') return `a whole number from ${String(s.minimum)} to ${String(s.maximum)}`;
  if (t === 'number') return `a number from ${String(s.minimum)} to ${String(s.maximum)}`;
  if (t === 'boolean') return 'true or false';
  if (t === 'string') return s.minLength ? 'a non-empty string' : 'a string';
  if (t === 'array') return s.minItems ? `a list of at least ${String(s.minItems)} item(s)` : 'a list';
  if (t === 'object') return 'a mapping';
  return JSON.stringify(t);
}

let validator: ReturnType<Ajv['compile']> | undefined;
function validate(data: unknown): ErrorObject[] {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, allowUnionTypes: true });
    ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
    validator = ajv.compile(configSchema);
  }
  return validator(data) ? [] : [...(validator.errors ?? [])];
}

function pathOf(instancePath: string): PathSeg[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

/** The schema's findings on the parsed file, one readable issue per path (ajv may report several keywords for one bad value). */
export function schemaIssues(data: unknown): Array<{ path: PathSeg[]; msg: string }> {
  const out = new Map<string, { path: PathSeg[]; msg: string }>();
  for (const e of validate(data)) {
    let path = pathOf(e.instancePath);
    let msg: string;
    const ps = (e.parentSchema ?? {}) as Schema;
    if (e.keyword === 'required') {
      msg = `missing required key "${String((e.params as { missingProperty: string }).missingProperty)}"`;
    } else if (e.keyword === 'additionalProperties') {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      path = [...path, key];
      msg = `unknown key; expected one of: ${Object.keys((ps.properties ?? {}) as object).join(', ')}`;
    } else {
      msg = `got ${show(e.data)}, expected ${expectOf(ps)}`;
    }
    const k = `${formatPath(path)}|${e.keyword === 'required' ? msg : ''}`;
    if (!out.has(k)) out.set(k, { path, msg });
  }
  return [...out.values()];
}
