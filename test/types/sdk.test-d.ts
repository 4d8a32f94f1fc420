// Type tests of the SDK (vitest typecheck): requests are checked against the spec's generated
// types, so a misspelt field or a value outside an enum does not compile.
import { describe, expectTypeOf, it } from 'vitest';
import {
  createModelRepositoryClient,
  ModelRepositoryError,
  type components,
  type ModelArtifact,
  type ModelPage,
  type ModelSummary,
  type UploadArtifactOptions,
} from '../../sdk/src/index.ts';

const client = createModelRepositoryClient({ baseUrl: 'http://127.0.0.1:8080', apiKey: 'mr_key' });
const productId = '3f6d2a8e-1b7c-4e59-9a0d-5c2b8e4f7a10';
// Every field the generated ModelCreate requires (fields with a default are required there too).
const model = { name: 'Churn', product_type: 'ML Model', environment: 'development', deployment_status: 'development' } as const;

describe('SDK request types', () => {
  it('accepts valid requests and types the answers from the spec', async () => {
    expectTypeOf(await client.createModel('default', { ...model, risk_classification: 'high' })).toEqualTypeOf<ModelSummary>();
    expectTypeOf(await client.updateModel(productId, { deployment_status: 'retired', description: null })).toEqualTypeOf<ModelSummary>();
    expectTypeOf(await client.uploadArtifact(productId, new Uint8Array(1), { file_name: 'a.onnx', artifact_kind: 'weights' })).toEqualTypeOf<ModelArtifact>();
    expectTypeOf(client.listModels({ space: 'default' }, { deployment_status: 'production', types: ['ML Model'] })).toMatchTypeOf<AsyncIterable<ModelPage>>();
    const { data } = await client.api.GET('/catalog/products/{product_id}/model-artifacts', { params: { path: { product_id: productId } } });
    expectTypeOf(data).toEqualTypeOf<components['schemas']['ModelArtifact'][] | undefined>();
    expectTypeOf<ModelSummary>().toEqualTypeOf<components['schemas']['ModelSummary']>();
  });

  it('rejects a misspelt field name', () => {
    void client.createModel('default', {
      ...model,
      // @ts-expect-error `nmae` is not a field of ModelCreate
      nmae: 'Churn',
    });
    void client.updateModel(productId, {
      // @ts-expect-error `deployment_stauts` is not a field of ModelUpdate
      deployment_stauts: 'retired',
    });
    void client.uploadArtifact(productId, new Uint8Array(1), {
      file_name: 'a.onnx',
      // @ts-expect-error `artifact_knd` is not an upload option
      artifact_knd: 'weights',
    });
    void client.listModels(
      { space: 'default' },
      {
        // @ts-expect-error `deploymentStatus` is not a list filter (the spec says deployment_status)
        deploymentStatus: 'production',
      },
    );
    void client.api.POST('/catalog/spaces/{slug}/model-repository/models', {
      params: { path: { slug: 'default' } },
      // Spelled out: openapi-fetch's generic signature stops flagging extra fields next to a spread
      // (openapi-ts/openapi-typescript#1769); the client's own methods have no such gap.
      body: {
        name: 'Churn',
        product_type: 'ML Model',
        environment: 'development',
        deployment_status: 'development',
        // @ts-expect-error `lifecycle` is not a field of ModelCreate
        lifecycle: 'training',
      },
    });
    void client.api.GET('/catalog/spaces/{slug}/model-repository/models', {
      params: {
        path: { slug: 'default' },
        query: {
          // @ts-expect-error `limt` is not a query parameter
          limt: 10,
        },
      },
    });
  });

  it('rejects a value outside an enum', () => {
    void client.createModel('default', {
      ...model,
      // @ts-expect-error `huge` is not a RiskClassification
      risk_classification: 'huge',
    });
    void client.updateModel(productId, {
      // @ts-expect-error `live` is not a DeploymentStatus
      deployment_status: 'live',
    });
    void client.uploadArtifact(productId, new Uint8Array(1), {
      file_name: 'a.onnx',
      // @ts-expect-error `weightz` is not an ArtifactKind
      artifact_kind: 'weightz',
    });
    void client.listModels(
      { space: 'default' },
      {
        // @ts-expect-error `LLM` is not a ProductType
        types: ['LLM'],
      },
    );
    void client.api.POST('/catalog/products/{product_id}/model-artifacts/uploads', {
      params: { path: { product_id: productId } },
      body: {
        file_name: 'a.onnx',
        content_type: 'application/octet-stream',
        total_size_bytes: 1,
        is_current: false,
        // @ts-expect-error `binary` is not an ArtifactKind
        artifact_kind: 'binary',
      },
    });
    void client.api.GET('/catalog/spaces/{slug}/model-repository/models', {
      params: {
        path: { slug: 'default' },
        query: {
          // @ts-expect-error `prod` is not a DeploymentStatus
          deployment_status: 'prod',
        },
      },
    });
  });

  it('rejects unknown paths, missing path parameters and wrong shapes', () => {
    // @ts-expect-error no such path in the spec
    void client.api.GET('/catalog/products/{product_id}/model-artefacts', { params: { path: { product_id: productId } } });
    // @ts-expect-error product_id is required
    void client.api.GET('/catalog/products/{product_id}/model-artifacts', { params: { path: {} } });
    // @ts-expect-error a scope is one of space or organization, not both
    void client.listModels({ space: 'a', organization: 'b' });
    void client.uploadArtifact(productId, new Uint8Array(1), {
      // @ts-expect-error concurrency is a number
      concurrency: '4',
    });
    expectTypeOf<UploadArtifactOptions['onProgress']>().toEqualTypeOf<
      ((progress: { uploadedBytes: number; totalBytes: number }) => void) | undefined
    >();
  });

  it('exposes the error fields', () => {
    expectTypeOf<ModelRepositoryError['status']>().toEqualTypeOf<number>();
    expectTypeOf<ModelRepositoryError['code']>().toEqualTypeOf<string>();
    expectTypeOf<ModelRepositoryError['requestId']>().toEqualTypeOf<string | null>();
    expectTypeOf<ModelRepositoryError['errors']>().toEqualTypeOf<components['schemas']['FieldError'][]>();
    expectTypeOf<ModelRepositoryError['problem']>().toEqualTypeOf<components['schemas']['Problem'] | null>();
  });
});
