/**
 * `multipart(files, fields)`: a multipart/form-data body for the benchmark scripts (bench-load, bench-inpaint),
 * one PNG file part per entry of `files` (`name` → field name and filename `name.png`) after one text part per
 * entry of `fields`. Returns the body bytes and the Content-Type header value with its boundary. Never throws.
 */
export function multipart(files: Record<string, Buffer>, fields: Record<string, string> = {}): { body: Buffer; type: string } {
  const b = `----bench${Date.now()}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  for (const [name, data] of Object.entries(files)) {
    parts.push(Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}.png"\r\nContent-Type: image/png\r\n\r\n`), data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${b}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${b}` };
}
