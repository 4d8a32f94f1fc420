import type { components } from '../generated/api.ts';

/** What is stored on the artifact (the spec's ArtifactInspection). */
export type Inspection = components['schemas']['ArtifactInspection'];

export type InspectionFormat = 'safetensors' | 'gguf' | 'onnx' | 'pytorch' | 'pickle';

/** What one format module found; the unset fields are null in the stored inspection. */
export interface InspectionFindings {
  format: InspectionFormat;
  parameter_count?: number | null;
  tensor_count?: number | null;
  dtypes?: Record<string, number> | null;
  architecture?: string | null;
  quantization?: string | null;
  metadata?: Record<string, unknown> | null;
  warnings?: Inspection['warnings'];
}
