import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminClient } from '../../helpers/admin.js';
import { startTestApp, type TestApp } from '../../helpers/app.js';

type Schema = {
  $ref?: string;
  type?: string | string[];
  format?: string;
  pattern?: string;
  enum?: unknown[];
  const?: unknown;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: Schema;
  maxItems?: number;
  properties?: Record<string, Schema>;
  required?: string[];
  anyOf?: Schema[];
  oneOf?: Schema[];
};
type Operation = {
  method: string;
  path: string;
  parameters: Array<{ in: 'path' | 'query'; name: string; required?: boolean; schema: Schema }>;
  body?: Schema;
};

let app: TestApp;
let admin: AdminClient;
let operations: Operation[];
let components: Record<string, Schema>;
const knownIds: string[] = [];
const knownRoles = ['ops'];

beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
  const { body } = await admin.call('GET', '/admin/openapi.json');
  components = body.components.schemas;
  operations = Object.entries(body.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content?.['application/json']?.schema,
    })),
  );
  await admin.call('POST', '/admin/roles', { body: { name: 'ops' } });
  for (const username of ['fuzz-a', 'fuzz-b']) knownIds.push((await admin.call('POST', '/admin/users', { body: { username } })).body.id);
});
afterAll(() => app?.stop());

/** A fast-check arbitrary of values valid for a JSON schema (as far as this API's schemas go). */
function valid(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  if (schema.$ref) return valid(components[schema.$ref.split('/').pop()!]!, depth);
  if (schema.anyOf ?? schema.oneOf) return fc.oneof(...(schema.anyOf ?? schema.oneOf)!.map((s) => valid(s, depth)));
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.const !== undefined) return fc.constant(schema.const);
  const types = Array.isArray(schema.type) ? schema.type : [schema.type ?? 'string'];
  return fc.oneof(...types.map((type) => validOfType(type, schema, depth)));
}

function validOfType(type: string, schema: Schema, depth: number): fc.Arbitrary<unknown> {
  switch (type) {
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1000 });
    case 'number':
      return fc.double({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1000, noNaN: true });
    case 'array':
      return fc.array(valid(schema.items ?? {}, depth + 1), { maxLength: Math.min(schema.maxItems ?? 4, 4) });
    case 'object': {
      const properties = Object.entries(schema.properties ?? {});
      const required = new Set(schema.required ?? []);
      return fc.record(Object.fromEntries(properties.map(([name, s]) => [name, valid(s, depth + 1)])), {
        requiredKeys: properties.map(([name]) => name).filter((name) => required.has(name)),
      });
    }
    default:
      if (schema.format === 'uuid') return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...knownIds) }, { weight: 1, arbitrary: fc.uuid() });
      if (schema.format === 'email') return fc.emailAddress().filter((email) => email.length <= 254);
      if (schema.format === 'date-time') return fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString());
      if (schema.pattern && knownRoles.length > 0 && new RegExp(schema.pattern).test(knownRoles[0]!) && schema.maxLength === undefined) {
        return fc.oneof(fc.constantFrom(...knownRoles), fc.stringMatching(new RegExp(schema.pattern)));
      }
      if (schema.pattern) return withLoneSurrogates(fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length >= (schema.minLength ?? 0) && s.length <= (schema.maxLength ?? 1e6)));
      return withLoneSurrogates(fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40), unit: 'binary' }));
  }
}

/**
 * Sometimes a lone UTF-16 surrogate inserted somewhere: JSON.stringify escapes it (`\ud800`),
 * JSON.parse gives it back, and PostgreSQL's text and jsonb refuse it.
 */
function withLoneSurrogates(strings: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const lone = fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff');
  const inserted = fc.tuple(strings, lone, fc.nat()).map(([s, surrogate, at]) => {
    const i = at % (s.length + 1);
    return s.slice(0, i) + surrogate + s.slice(i);
  });
  return fc.oneof({ weight: 4, arbitrary: strings }, { weight: 1, arbitrary: inserted });
}

/** Valid values most of the time, anything JSON (or a raw string) otherwise. */
const either = (schema: Schema) => fc.oneof({ weight: 3, arbitrary: valid(schema) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });

const request = () =>
  fc
    .constantFrom(...operations)
    .chain((op) =>
      fc.record({
        op: fc.constant(op),
        path: fc.record(
          Object.fromEntries(op.parameters.filter((p) => p.in === 'path').map((p) => [p.name, fc.oneof({ weight: 4, arbitrary: valid(p.schema) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) })])),
        ),
        query: fc.record(
          Object.fromEntries(op.parameters.filter((p) => p.in === 'query').map((p) => [p.name, fc.oneof({ weight: 3, arbitrary: valid(p.schema) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) })])),
          { requiredKeys: [] },
        ),
        extraQuery: fc.option(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 })), { freq: 5 }),
        body: op.body
          ? fc.oneof({ weight: 6, arbitrary: either(op.body).map((value) => ({ json: value })) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((raw) => ({ raw })) }, { weight: 1, arbitrary: fc.constant(undefined) })
          : fc.option(fc.jsonValue({ maxDepth: 1 }).map((value) => ({ json: value })), { freq: 6 }),
      }),
    );

describe('the admin API driven from its own OpenAPI document', () => {
  it('never answers 5xx, and every error has a stable code', async () => {
    expect(operations.length).toBe(29);
    const seen = new Map<string, number>();
    const fresh = app.clientAgent('admin-cli');
    let previous = '';
    let previousAt = Date.now();
    await fc.assert(
      fc.asyncProperty(request(), async ({ op, path, query, extraQuery, body }) => {
        // A URL cannot carry a lone surrogate (no UTF-8 for it): it goes as U+FFFD.
        const url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(String(path[name]).toWellFormed()));
        const params = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
        if (extraQuery) params.append(...extraQuery);
        const qs = params.toString();
        if (process.env.FUZZ_LOG) console.log('REQ', op.method, url, qs, JSON.stringify(body));
        const response = await admin
          // A fresh connection per request: fast-check's synchronous generation can hold the event
          // loop past the server's keep-alive timeout, and a reused idle socket would then be reset.
          .call(op.method, `${url}${qs ? `?${qs}` : ''}`, { ...(body ? ('json' in body ? { body: body.json ?? null } : { raw: body.raw }) : {}), agent: fresh, reset: true })
          .catch((error: Error) => {
            throw new Error(`${op.method} ${url}?${qs} ${JSON.stringify(body)}: ${error.message} (previous: ${previous}, ${Date.now() - previousAt} ms ago)`, { cause: error });
          });
        previous = `${op.method} ${url}?${qs} ${JSON.stringify(body)} → ${response.status}`;
        previousAt = Date.now();
        seen.set(`${op.method} ${op.path} ${response.status}`, (seen.get(`${op.method} ${op.path} ${response.status}`) ?? 0) + 1);
        expect(response.status, `${op.method} ${url}?${qs} ${JSON.stringify(body)} → ${JSON.stringify(response.body)}`).toBeLessThan(500);
        if (response.status >= 400) {
          expect(response.body).toMatchObject({ error: expect.stringMatching(/^[a-z_]+$/), error_description: expect.any(String) });
        }
      }),
      { numRuns: 300, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) },
    );
    // The generator reaches success paths, not only refusals.
    const succeeded = new Set([...seen.keys()].filter((key) => /\s2\d\d$/.test(key)).map((key) => key.replace(/\s\d+$/, '')));
    expect(succeeded.size, [...succeeded].join(', ')).toBeGreaterThanOrEqual(7);
  });
});
