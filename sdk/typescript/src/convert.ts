// Key conversion snake_case ⇄ camelCase, by schema (never blindly).
//
// Only the properties a schema lists are renamed; a nested object, array or map is
// converted by its own schema. Keys of a map (e.g. a symbol → value table) and fields
// the schema does not know (a newer API's additions) are kept exactly as they came, so
// nothing is lost and nothing is rewritten that is data rather than a field name.

import { SCHEMAS, type FieldShape, type SchemaTable } from "./models.js";

type Tables = Readonly<Record<string, SchemaTable>>;

const reverseCache = new WeakMap<SchemaTable, Record<string, readonly [string, FieldShape]>>();

function reverse(table: SchemaTable): Record<string, readonly [string, FieldShape]> {
  let found = reverseCache.get(table);
  if (found === undefined) {
    found = {};
    for (const [wire, [camelName, shape]] of Object.entries(table)) {
      found[camelName] = [wire, shape];
    }
    reverseCache.set(table, found);
  }
  return found;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function convert(value: unknown, shape: FieldShape, toWire: boolean, tables: Tables): unknown {
  if (shape === null || value === null || value === undefined) return value;
  if (typeof shape === "string") {
    const table = tables[shape];
    if (table === undefined || !isPlainObject(value)) return value;
    const names = toWire ? reverse(table) : table;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const known = Object.prototype.hasOwnProperty.call(names, key) ? names[key] : undefined;
      if (known === undefined) {
        if (!(key in out)) out[key] = item; // unknown: kept as it came
        continue;
      }
      const [name, inner] = known;
      out[name] = convert(item, inner, toWire, tables);
    }
    return out;
  }
  if ("array" in shape) {
    return Array.isArray(value) ? value.map((item) => convert(item, shape.array, toWire, tables)) : value;
  }
  if ("map" in shape) {
    if (!isPlainObject(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = convert(item, shape.map, toWire, tables);
    return out;
  }
  return value;
}

/** A wire (snake_case) value of schema `shape` as the SDK's camelCase model. */
export function fromWire<T = unknown>(value: unknown, shape: FieldShape, tables: Tables = SCHEMAS): T {
  return convert(value, shape, false, tables) as T;
}

/** A camelCase model of schema `shape` as the wire (snake_case) value. Fields the
 * schema does not list are sent as given (so a newer field can be sent by its wire
 * name); `undefined` values are dropped. */
export function toWire(value: unknown, shape: FieldShape, tables: Tables = SCHEMAS): unknown {
  const out = convert(value, shape, true, tables);
  return dropUndefined(out);
}

function dropUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropUndefined);
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item !== undefined) out[key] = dropUndefined(item);
  }
  return out;
}

/** snake_case → camelCase for one name (used for names no schema lists, e.g. query keys). */
export function camelName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}
