// Type tests of the server's handler table (vitest typecheck): each handler sees its own
// operation's parameters and body, as generated from the spec.
import { describe, expectTypeOf, it } from 'vitest';
import type { components } from '../../server/src/generated/api.ts';
import type { Handler, HandlerTable, OperationRequest } from '../../server/src/http/types.ts';

describe('server handler types', () => {
  it("types a request by its operation's path parameters, query and body", () => {
    expectTypeOf<OperationRequest<'uploadArtifactChunk'>['params']>().toEqualTypeOf<{ product_id: string; upload_id: string; chunk_index: string }>();
    expectTypeOf<OperationRequest<'getModel'>['params']>().toEqualTypeOf<{ product_id: string }>();
    expectTypeOf<OperationRequest<'createSpaceModel'>['body']>().toEqualTypeOf<components['schemas']['ModelCreate']>();
    expectTypeOf<OperationRequest<'completeArtifactUpload'>['body']>().toEqualTypeOf<components['schemas']['ArtifactUploadComplete'] | undefined>();
    expectTypeOf<OperationRequest<'createModelArtifact'>['body']>().toEqualTypeOf<Partial<components['schemas']['ArtifactMultipartUpload']>>();
    expectTypeOf<OperationRequest<'listSpaceModels'>['query']['limit']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<OperationRequest<'getModel'>['body']>().toEqualTypeOf<undefined>();
  });

  it('refuses a handler that reads what its operation does not have', () => {
    // @ts-expect-error -- getModel has no `slug` path parameter
    const wrongParam: Handler<'getModel'> = async (req) => void req.params.slug.length;
    // @ts-expect-error -- listModelVersions takes no body
    const wrongBody: Handler<'listModelVersions'> = async (req) => void req.body.name;
    expectTypeOf(wrongParam).toBeFunction();
    expectTypeOf(wrongBody).toBeFunction();
  });

  it('needs a handler for every operation', () => {
    expectTypeOf<keyof HandlerTable>().toEqualTypeOf<keyof import('../../server/src/generated/api.ts').operations>();
    // A handler of another operation does not fit: parameters differ.
    expectTypeOf<Handler<'listSpaceModels'>>().not.toMatchTypeOf<HandlerTable['getModel']>();
  });
});
