// Names for the generated schema types the SDK's own signatures use. All shapes come from the spec.
import type { components, operations } from './generated/api.js';

type Schemas = components['schemas'];

export type ModelSummary = Schemas['ModelSummary'];
export type ModelCreate = Schemas['ModelCreate'];
export type ModelUpdate = Schemas['ModelUpdate'];
export type ModelVersion = Schemas['ModelVersion'];
export type ModelVersionCreate = Schemas['ModelVersionCreate'];
export type ModelArtifact = Schemas['ModelArtifact'];
export type ArtifactInspection = Schemas['ArtifactInspection'];
export type ArtifactUploadCreate = Schemas['ArtifactUploadCreate'];
export type ArtifactUploadSession = Schemas['ArtifactUploadSession'];
export type ArtifactUploadComplete = Schemas['ArtifactUploadComplete'];
export type ArtifactKind = Schemas['ArtifactKind'];
export type Alias = Schemas['Alias'];
export type AliasChange = Schemas['AliasChange'];
export type Review = Schemas['Review'];
export type ReviewCreate = Schemas['ReviewCreate'];
export type ApprovalStatus = Schemas['ApprovalStatus'];
export type Problem = Schemas['Problem'];
export type Webhook = Schemas['Webhook'];
export type WebhookCreate = Schemas['WebhookCreate'];
export type WebhookUpdate = Schemas['WebhookUpdate'];
export type WebhookDelivery = Schemas['WebhookDelivery'];
export type WebhookEventFilter = Schemas['WebhookEventFilter'];
export type FieldError = Schemas['FieldError'];

/** Query filters shared by the space and organization model lists. */
export type ModelListQuery = NonNullable<operations['listSpaceModels']['parameters']['query']>;

/** An alias with the strong ETag to send back as `ifMatch` when changing it. */
export interface AliasWithEtag {
  alias: Alias;
  etag: string;
}

export type Event = Schemas['Event'];
export type EventType = Schemas['EventType'];
/** Query filters of the product and space event lists. */
export type EventListQuery = NonNullable<operations['listProductEvents']['parameters']['query']>;
