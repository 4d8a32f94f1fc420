/**
 * `current_artifact_model_format`: `metadata.format` when given, else inferred from the file
 * extension. Returns null when neither says anything.
 */
const BY_EXTENSION: Record<string, string> = {
  onnx: 'onnx',
  safetensors: 'safetensors',
  gguf: 'gguf',
  ggml: 'ggml',
  pt: 'pytorch',
  pth: 'pytorch',
  ckpt: 'checkpoint',
  pkl: 'pickle',
  pickle: 'pickle',
  joblib: 'joblib',
  h5: 'h5',
  hdf5: 'h5',
  keras: 'keras',
  tflite: 'tflite',
  pb: 'tensorflow',
  mlmodel: 'coreml',
  mlpackage: 'coreml',
  bin: 'bin',
  npz: 'numpy',
  npy: 'numpy',
  pmml: 'pmml',
  mar: 'torchserve',
  engine: 'tensorrt',
  plan: 'tensorrt',
  xgb: 'xgboost',
  ubj: 'xgboost',
  cbm: 'catboost',
  lgb: 'lightgbm',
  zip: 'zip',
};

export function modelFormat(fileName: string, metadata: Record<string, unknown> | null | undefined): string | null {
  const declared = metadata?.format;
  if (typeof declared === 'string' && declared.trim() !== '') return declared.trim().toLowerCase().slice(0, 100);
  const base = fileName.split(/[/\\]/).pop() ?? fileName;
  const dot = base.lastIndexOf('.');
  if (dot <= 0 || dot === base.length - 1) return null;
  return BY_EXTENSION[base.slice(dot + 1).toLowerCase()] ?? null;
}
