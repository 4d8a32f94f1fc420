/**
 * multer storage engine for the one-request artifact upload. (Placeholder until the artifacts
 * work lands: refuses every file.)
 */
import type { StorageEngine } from 'multer';
import type { Services } from '../services/index.ts';
import { notYet } from '../services/uploads.ts';

export function multipartStorage(_services: Services): StorageEngine {
  return {
    _handleFile(_req, file, cb) {
      file.stream.resume();
      cb(notYet());
    },
    _removeFile(_req, _file, cb) {
      cb(null);
    },
  };
}
