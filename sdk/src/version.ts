/** This package's version (kept equal to package.json by a unit test). */
export const sdkVersion = '0.1.0';
