/** demo/zip.ts: a checkpoint downloads as a stored ZIP and uploads back from a stored or deflated one. */
import { it, expect } from 'vitest';
import { zipSync } from 'fflate';
import { zipStore, unzipStore } from '../../demo/zip.js';

const enc = new TextEncoder();
const weights = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);

it('round trip, entries stored (method 0) with their sizes in the local headers', () => {
  const zip = zipStore([{ name: 'config.json', bytes: enc.encode('{"a":1}') }, { name: 'model.safetensors', bytes: weights }]);
  const back = unzipStore(zip);
  expect([...back.keys()]).toEqual(['config.json', 'model.safetensors']);
  expect(back.get('model.safetensors')).toEqual(weights);
  const v = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  expect(v.getUint32(0, true)).toBe(0x04034b50);   // a local file header first
  expect(v.getUint16(8, true)).toBe(0);            // method 0: stored
  expect(v.getUint32(18, true)).toBe(7);           // compressed size = size
});

it('reads a deflated archive of a folder as the folder itself; refuses what is not a ZIP, naming it', () => {
  const zip = zipSync({ 'my-model/': new Uint8Array(0), 'my-model/config.json': [enc.encode('{"b":2}'.repeat(50)), { level: 9 }] });
  const back = unzipStore(zip);
  expect([...back.keys()]).toEqual(['config.json']);
  expect(new TextDecoder().decode(back.get('config.json'))).toBe('{"b":2}'.repeat(50));
  expect(() => unzipStore(new Uint8Array([1, 2, 3]), 'x.zip')).toThrow(/^x\.zip: not a readable ZIP archive/);
});
