/**
 * @fastify/multipart with the upload limits: one file of at most `MAX_UPLOAD_BYTES` per field,
 * at most 4 files and 8 fields; a text field of at most {@link MAX_HINT_POINTS_BYTES} (the longest field,
 * `hint_points` with its 1,000 points). A file or field over the limit raises the plugin's 413 error.
 */
import fp from 'fastify-plugin';
import multipart from '@fastify/multipart';
import { MAX_HINT_POINTS_BYTES } from '../imaging/hints.js';

export default fp<{ maxUploadBytes: number }>(async (app, opts) => {
  await app.register(multipart, {
    limits: { fileSize: opts.maxUploadBytes, files: 4, fields: 8, fieldSize: MAX_HINT_POINTS_BYTES, parts: 12 },
    throwFileSizeLimit: true,
  });
  // Raw image bodies (`Content-Type: image/jpeg`, `curl --data-binary @photo.jpg`): read as bytes here;
  // `readUpload` accepts them on the routes that take one image (`/v1/translate`) and names the fields to use
  // elsewhere. Bounded like a file upload.
  app.addContentTypeParser(/^image\//i, { parseAs: 'buffer', bodyLimit: opts.maxUploadBytes }, (_request, body, done) => done(null, body));
}, { name: 'multipart' });
