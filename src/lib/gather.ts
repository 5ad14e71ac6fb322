/**
 * Messages on the hot paths travel as parts (headers, then the
 * application's bytes as they came) so that each byte is copied once, where
 * it finally has to be contiguous: a frame, a write batch.
 */

/** The parts of a message as one buffer (the part itself when alone). */
export function gather(parts: Uint8Array | readonly Uint8Array[]): Uint8Array {
  if (parts instanceof Uint8Array) return parts;
  if (parts.length === 1) return parts[0];
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
