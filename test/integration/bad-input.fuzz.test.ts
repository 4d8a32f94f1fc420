/**
 * A battery of bad input thrown at every operation of the spec, on filesystem + SQLite and on S3 +
 * PostgreSQL: malformed %-escapes and odd bytes in path segments and queries, malformed and
 * hostile JSON (lone surrogates, NUL, control characters, huge numbers), bad strings in every
 * string field of every JSON body, malformed multipart bodies, garbage headers. The server must
 * never answer 5xx, and every error must be application/problem+json with a detail.
 */
import net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { API, randomData, startArtifactApp, storageTargets, type ArtifactApp, type StorageTarget } from '../support/artifacts.ts';

interface Operation {
  method: string;
  path: string;
  operationId: string;
  bodyTypes: string[];
  bodyProps: string[];
}

const spec = (await import('../../server/src/generated/openapi.json', { with: { type: 'json' } })).default as {
  paths: Record<string, Record<string, { operationId?: string; requestBody?: { content: Record<string, { schema: { $ref?: string; properties?: object } }> } }>>;
  components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
};
const operations: Operation[] = Object.entries(spec.paths).flatMap(([path, ops]) =>
  Object.entries(ops).flatMap(([method, op]) => {
    if (typeof op !== 'object' || !op.operationId) return [];
    const content = op.requestBody?.content ?? {};
    const bodyTypes = Object.keys(content);
    const bodyProps = bodyTypes.flatMap((t) => {
      const schema = content[t]!.schema;
      const resolved = schema.$ref ? spec.components.schemas[schema.$ref.split('/').pop()!]! : schema;
      return Object.keys(resolved.properties ?? {});
    });
    return [{ method: method.toUpperCase(), path, operationId: op.operationId, bodyTypes, bodyProps }];
  }),
);

/** Path segments no route or decoder should choke on. */
const BAD_SEGMENTS = ['%', '%zz', '%E0%A4%A', '%ED%A0%80', '%C0%AF', '%FF%FE', '%00', '..%2F..%2Fetc', '%2e%2e', 'x'.repeat(3000), '%F0%9F%98', '-1', '1e400', '0x10', '%20', '%0A%0D'];
/** Query strings. */
const BAD_QUERIES = ['limit=%zz', 'q=%', 'q=%ED%A0%80', 'skip=1e400', 'limit=99999999999999999999', 'types=%FF', 'q=' + 'a'.repeat(8_000), 'include_archived=maybe', 'since=%00', 'q=%E2%80%AE%0A'];
/** Strings for every string field of a JSON body. */
const BAD_STRINGS = ['\ud800', 'a\udc00b', 'x\u0000y', 'text/plain; x=\u00ff\u0001', 'application/octet-stream; name="\u2028"', '\u001b[31mred', 'javascript:alert(1)', 'é'.repeat(5000), ''];
/** Raw JSON bodies. */
const BAD_JSON = ['{', '{"name":', '[]', '"\\ud800"', 'null', '1e400', '{"name":"\\ud800"}', '{"name":"ok","metadata":{"\\ud800":1}}', '{"__proto__":{"x":1},"name":"p"}', '[' .repeat(5000)];

for (const factory of await storageTargets()) {
  describe.skipIf(!factory.create)(`bad input on every operation on ${factory.name}`, () => {
    let target: StorageTarget;
    let app: ArtifactApp;
    const ids: Record<string, string> = {};
    const failures: string[] = [];

    beforeAll(async () => {
      target = await factory.create!();
      app = await startArtifactApp(target);
      ids.slug = 'default';
      ids.product_id = await app.client.createModel('Fuzz');
      const { artifact } = await app.client.upload(ids.product_id, randomData(1000));
      ids.artifact_id = artifact.id;
      const init = await app.client.initiate(ids.product_id, { file_name: 'f.bin', content_type: 'application/octet-stream', total_size_bytes: 10 });
      ids.upload_id = init.body.id;
      ids.chunk_index = '0';
    });
    beforeEach(() => {
      failures.length = 0;
    });
    afterAll(async () => {
      await app?.close();
      await target?.close();
    });

    const fill = (path: string, override: Record<string, string> = {}) =>
      path.replace(/\{(\w+)\}/g, (_m, name: string) => override[name] ?? ids[name] ?? 'x');
    const url = (p: string) => (p.startsWith('/openapi.yaml') || !p.startsWith('/') ? `${API}${p}` : p.startsWith('/healthz') || p.startsWith('/readyz') ? p : `${API}${p}`);

    /** Records a 5xx or an error that is not problem+json. */
    async function check(what: string, res: Response): Promise<void> {
      const text = await res.text();
      const type = res.headers.get('content-type') ?? '';
      if (res.status >= 500) failures.push(`${what} → ${res.status} ${text.slice(0, 200)}`);
      else if (res.status >= 400 && res.status !== 405 && !type.startsWith('application/problem+json')) {
        failures.push(`${what} → ${res.status} with ${type}: ${text.slice(0, 200)}`);
      } else if (res.status >= 400 && text !== '') {
        // (HEAD answers carry no body.)
        const body = JSON.parse(text) as { detail?: unknown };
        if (typeof body.detail !== 'string' || body.detail === '') failures.push(`${what} → ${res.status} without a detail`);
      }
    }

    async function send(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Response> {
      return fetch(`${app.origin}${url(path)}`, {
        method,
        headers: { Authorization: `Bearer ${app.owner.key}`, ...init.headers },
        body: method === 'GET' || method === 'HEAD' ? undefined : init.body,
        redirect: 'manual',
      });
    }

    const jsonBase: Record<string, Record<string, unknown>> = {
      createSpaceModel: { name: 'Fuzzed model' },
      updateModel: {},
      createModelVersion: {},
      initiateArtifactUpload: { file_name: 'a.bin', content_type: 'application/octet-stream', total_size_bytes: 10 },
      completeArtifactUpload: {},
    };

    it('the rules behind the battery, answer by answer', async () => {
      const json = (method: string, path: string, body: unknown) =>
        send(method, path, { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
      // serving_url: http, https, grpc, grpcs only (any case), on create and update.
      const models = '/catalog/spaces/default/model-repository/models';
      for (const url of ['javascript:alert(1)', 'JavaScript://x', 'ftp://x.example', 'data:text/html,hi', 'file:///etc/passwd']) {
        const created = await json('POST', models, { name: `Bad url ${Math.random()}`, serving_url: url });
        expect(created.status, url).toBe(422);
        expect(created.body.errors.map((e: { loc: unknown[] }) => e.loc)).toContainEqual(['body', 'serving_url']);
        expect((await json('PATCH', `/catalog/products/${ids.product_id}/model-repository`, { serving_url: url })).status, url).toBe(422);
      }
      for (const url of ['https://serve.example/v1', 'HTTP://serve.example', 'grpc://10.0.0.1:8500', 'grpcs://serve.example:443']) {
        const updated = await json('PATCH', `/catalog/products/${ids.product_id}/model-repository`, { serving_url: url });
        expect(updated.status, url).toBe(200);
        expect(updated.body.serving_url).toBe(url);
      }
      // content_type: parameters in printable ASCII only, at initiation and in a multipart upload.
      const uploads = `/catalog/products/${ids.product_id}/model-artifacts/uploads`;
      for (const type of ['text/plain; x=\u00ff', 'text/plain; x=\u0001', 'text/plain;\nX-Injected: 1', 'text/plain; name=\u2603']) {
        const res = await json('POST', uploads, { file_name: 'a', content_type: type, total_size_bytes: 1 });
        expect(res.status, JSON.stringify(type)).toBe(422);
        expect(res.body.errors[0].loc).toEqual(['body', 'content_type']);
        const form = new FormData();
        form.set('content_type', type);
        form.set('file', new Blob([randomData(3)]), 'a.bin');
        const multipart = await send('POST', `/catalog/products/${ids.product_id}/model-artifacts`, { body: form });
        expect(multipart.status, JSON.stringify(type)).toBe(422);
      }
      expect((await json('POST', uploads, { file_name: 'a', content_type: 'text/plain; charset="utf-8"\t', total_size_bytes: 1 })).status).toBe(201);
      // A row stored before the rule: its download is sent as application/octet-stream, not a 500.
      await app.em().getConnection().execute('update model_artifacts set content_type = ? where id = ?', ['text/plain; x=\u2603\u0001', ids.artifact_id]);
      const download = await send('GET', fill('/catalog/products/{product_id}/model-artifacts/{artifact_id}/download'));
      if (target.backend === 'fs') {
        expect(download.status).toBe(200);
        expect(download.headers.get('content-type')).toBe('application/octet-stream');
      } else {
        expect(download.status).toBe(302);
      }
      // Lone surrogates in JSON (strings and keys) and in a multipart metadata field: 422.
      for (const metadata of [{ k: '\ud800' }, { '\udc00x': 1 }, { list: ['ok', 'a\ud83d'] }]) {
        const res = await json('POST', uploads, { file_name: 'a', content_type: 'application/octet-stream', total_size_bytes: 1, metadata });
        expect(res.status).toBe(422);
        expect(res.body.errors[0].msg).toMatch(/lone UTF-16 surrogate/);
        const form = new FormData();
        form.set('metadata', JSON.stringify(metadata));
        form.set('file', new Blob([randomData(3)]), 'a.bin');
        expect((await send('POST', `/catalog/products/${ids.product_id}/model-artifacts`, { body: form })).status).toBe(422);
      }
      // A malformed %-escape names nothing (404), or is an invalid value (422) — never a 500.
      for (const path of ['/catalog/products/%ZZ/model-repository', `/catalog/products/${ids.product_id}/model-artifacts/%E0%A4%A`, '/catalog/spaces/%/model-repository/models']) {
        const res = await send('GET', path);
        expect([404, 422], path).toContain(res.status);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
      // A multipart body the parser cannot read: 400 problem+json.
      const truncated = await send('POST', `/catalog/products/${ids.product_id}/model-artifacts`, {
        body: '--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nxx',
        headers: { 'Content-Type': 'multipart/form-data; boundary=b' },
      });
      expect(truncated.status).toBe(400);
      expect(((await truncated.json()) as { detail: string }).detail).toMatch(/multipart\/form-data body could not be read: Unexpected end of form/);
    });

    it('bad path segments in every parameter of every operation', async () => {
      for (const op of operations) {
        const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
        for (const param of params) {
          for (const seg of BAD_SEGMENTS) {
            const body = op.bodyTypes.includes('application/json') ? JSON.stringify(jsonBase[op.operationId] ?? {}) : op.bodyTypes.length ? 'x' : undefined;
            const type = op.bodyTypes[0] === 'multipart/form-data' ? 'application/json' : op.bodyTypes[0];
            const res = await send(op.method, fill(op.path, { [param]: seg }), { body, headers: type ? { 'Content-Type': type } : {} });
            await check(`${op.operationId} ${param}=${seg.slice(0, 30)}`, res);
          }
        }
        // Escapes in the static part of the path too.
        await check(`${op.operationId} with a broken escape appended`, await send(op.method, `${fill(op.path)}%`));
      }
      expect(failures).toEqual([]);
    });

    it('bad query strings on every operation', async () => {
      for (const op of operations) {
        for (const q of BAD_QUERIES) {
          const body = op.bodyTypes.includes('application/json') ? JSON.stringify(jsonBase[op.operationId] ?? {}) : undefined;
          await check(`${op.operationId} ?${q.slice(0, 40)}`, await send(op.method, `${fill(op.path)}?${q}`, { body, headers: body ? { 'Content-Type': 'application/json' } : {} }));
        }
      }
      expect(failures).toEqual([]);
    });

    it('malformed JSON bodies, odd JSON content types, and bad strings in every field of every JSON body', async () => {
      for (const op of operations.filter((o) => o.bodyTypes.includes('application/json'))) {
        for (const raw of BAD_JSON) {
          await check(`${op.operationId} body ${raw.slice(0, 30)}`, await send(op.method, fill(op.path), { body: raw, headers: { 'Content-Type': 'application/json' } }));
        }
        for (const type of ['application/json; charset=utf-16', 'application/json; charset=ü', 'application/json; x="\\"', 'text/plain', 'application/json, text/plain']) {
          await check(`${op.operationId} Content-Type ${type}`, await send(op.method, fill(op.path), { body: '{}', headers: { 'Content-Type': type } }));
        }
        for (const prop of op.bodyProps) {
          for (const bad of BAD_STRINGS) {
            // Fresh sessions: a completion that succeeded would leave nothing to complete.
            const body = { ...jsonBase[op.operationId], [prop]: bad };
            await check(`${op.operationId} ${prop}=${JSON.stringify(bad).slice(0, 30)}`, await send(op.method, fill(op.path), { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }));
          }
          for (const bad of [1e308, -1, 2 ** 63, [], {}, true, null, { k: '\ud800' }, { '\udc00': 1 }, ['\ud83d']]) {
            const body = { ...jsonBase[op.operationId], [prop]: bad };
            await check(`${op.operationId} ${prop}=${JSON.stringify(bad)}`, await send(op.method, fill(op.path), { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }));
          }
        }
      }
      expect(failures).toEqual([]);
    });

    it('malformed multipart bodies and bad strings in every multipart field', async () => {
      const path = `/catalog/products/${ids.product_id}/model-artifacts`;
      const b = 'XyZboundary';
      const part = (headers: string, content: string) => `--${b}\r\n${headers}\r\n\r\n${content}\r\n`;
      const file = part('Content-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/octet-stream', 'bytes');
      const bodies: [string, string, string][] = [
        ['no boundary', 'multipart/form-data', file + `--${b}--\r\n`],
        ['other boundary', 'multipart/form-data; boundary=other', file + `--${b}--\r\n`],
        ['truncated', `multipart/form-data; boundary=${b}`, file.slice(0, 60)],
        ['no final boundary', `multipart/form-data; boundary=${b}`, file],
        ['garbage', `multipart/form-data; boundary=${b}`, 'garbage\r\n\r\n--'],
        ['empty', `multipart/form-data; boundary=${b}`, ''],
        ['part without headers', `multipart/form-data; boundary=${b}`, `--${b}\r\n\r\nx\r\n--${b}--\r\n`],
        ['part without a name', `multipart/form-data; boundary=${b}`, part('Content-Disposition: form-data; filename="a"', 'x') + `--${b}--\r\n`],
        ['two files', `multipart/form-data; boundary=${b}`, file + file + `--${b}--\r\n`],
        ['file type with NUL', `multipart/form-data; boundary=${b}`, part('Content-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: application/x\u0000y', 'bytes') + `--${b}--\r\n`],
        ['file type with control characters', `multipart/form-data; boundary=${b}`, part('Content-Disposition: form-data; name="file"; filename="a.bin"\r\nContent-Type: text/plain; x=\u0001\u00ff', 'bytes') + `--${b}--\r\n`],
        ['file name with NUL', `multipart/form-data; boundary=${b}`, part('Content-Disposition: form-data; name="file"; filename="a\u0000.bin"', 'bytes') + `--${b}--\r\n`],
        ['unknown field', `multipart/form-data; boundary=${b}`, part('Content-Disposition: form-data; name="colour"', 'red') + file + `--${b}--\r\n`],
        ['field after the file', `multipart/form-data; boundary=${b}`, file + part('Content-Disposition: form-data; name="metadata"', '{') + `--${b}--\r\n`],
        ['huge header', `multipart/form-data; boundary=${b}`, part(`Content-Disposition: form-data; name="file"; filename="${'a'.repeat(100_000)}"`, 'x') + `--${b}--\r\n`],
      ];
      for (const [what, type, body] of bodies) {
        await check(`multipart ${what}`, await send('POST', path, { body: Buffer.from(body, 'latin1'), headers: { 'Content-Type': type } }));
      }
      const op = operations.find((o) => o.operationId === 'createModelArtifact')!;
      for (const prop of op.bodyProps.filter((p) => p !== 'file')) {
        for (const bad of [...BAD_STRINGS, '{', '1e400', '-1']) {
          const form = new FormData();
          form.set(prop, bad);
          form.set('file', new Blob([randomData(10)], { type: 'application/octet-stream' }), 'a.bin');
          await check(`multipart ${prop}=${JSON.stringify(bad).slice(0, 30)}`, await send('POST', path, { body: form }));
        }
      }
      expect(failures).toEqual([]);
    });

    it('garbage headers: Range, If-None-Match, Content-Digest, Authorization, Content-Length', async () => {
      const download = fill('/catalog/products/{product_id}/model-artifacts/{artifact_id}/download');
      for (const range of ['bytes=abc', 'bytes=99999999999999999999-', 'bytes=5-1', 'bytes=-0', 'bytes=0-0,1-1,2-2', 'items=0-1', 'bytes=\u00ff']) {
        for (const method of ['GET', 'HEAD']) await check(`${method} Range ${range}`, await send(method, download, { headers: { Range: range } }));
      }
      for (const tag of ['"', 'W/', '*, "x', '\u00ff']) await check(`If-None-Match ${tag}`, await send('GET', download, { headers: { 'If-None-Match': tag } }));
      const chunk = fill('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}/chunks/{chunk_index}');
      for (const digest of ['sha-256=', 'sha-256=:!!:', 'sha-256=:' + 'A'.repeat(10_000) + ':', '=,=,=', '\u00ff']) {
        await check(`Content-Digest ${digest.slice(0, 20)}`, await send('PUT', chunk, { body: randomData(10), headers: { 'Content-Type': 'application/octet-stream', 'Content-Digest': digest } }));
      }
      for (const auth of ['Bearer', 'Bearer \u00ff\u00fe', 'Basic xx', 'Bearer ' + 'a'.repeat(10_000)]) {
        await check(`Authorization ${auth.slice(0, 20)}`, await fetch(`${app.origin}${API}${fill('/catalog/products/{product_id}/model-repository')}`, { headers: { Authorization: auth } }));
      }
      expect(failures).toEqual([]);
    });

    it('raw requests: a NUL and control characters in header values, broken chunked encoding', async () => {
      const raw = (request: string) =>
        new Promise<string>((resolve) => {
          const { hostname, port } = new URL(app.origin);
          const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.end(Buffer.from(request, 'latin1')));
          let text = '';
          socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
          socket.on('close', () => resolve(text));
          socket.on('error', () => resolve(text));
        });
      const auth = `Authorization: Bearer ${app.owner.key}\r\n`;
      const chunkPath = `${API}${fill('/catalog/products/{product_id}/model-artifacts/uploads/{upload_id}/chunks/{chunk_index}')}`;
      const requests = [
        `PUT ${chunkPath} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n`,
        `PUT ${chunkPath} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/octet-stream; x=\u0001\r\nContent-Length: 10\r\n\r\n0123456789`,
        `POST ${API}/catalog/spaces/default/model-repository/models HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json; charset=\u00ff\r\nContent-Length: 2\r\n\r\n{}`,
        `GET ${API}/catalog/products/%ZZ/model-repository HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
        `GET ${API}/catalog/spaces/%/model-repository/models?q=%ZZ HTTP/1.1\r\nHost: x\r\n${auth}\r\n`,
      ];
      for (const request of requests) {
        const text = await raw(request);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
        if (status >= 500 || (status >= 400 && status !== 400 && !/content-type: application\/problem\+json/i.test(text))) {
          failures.push(`raw ${request.split('\r\n')[0]} → ${text.slice(0, 300)}`);
        }
      }
      expect(failures).toEqual([]);
    });
  });
}
