/**
 * The loader's decode thread (started by src/data/loader.ts): receives the file list once, then
 * jobs of (item, seed) and answers each with the samples' floats, transferred, or the error.
 */
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { type SampleDecoderInit, SampleDecoder } from './sample.js';

export interface DecodeRequest {
  id: number;
  /** Pairs (item index, seed), flattened. */
  jobs: Uint32Array;
}

export type DecodeReply =
  | { type: 'ready' }
  | { type: 'done'; id: number; data: Float32Array; stats: ReturnType<SampleDecoder['stats']> }
  | { type: 'error'; id: number; name: string; message: string; stats?: ReturnType<SampleDecoder['stats']> };

const port = parentPort!;
let decoder: SampleDecoder;
try {
  decoder = new SampleDecoder(workerData as SampleDecoderInit, fs);
} catch (e) {
  // Reported with the first request (the main thread validated the same things already).
  decoder = undefined as unknown as SampleDecoder;
  const err = e as Error;
  port.on('message', (m: DecodeRequest) => port.postMessage({ type: 'error', id: m.id, name: err.name, message: err.message } satisfies DecodeReply));
}
if (decoder) {
  port.on('message', (m: DecodeRequest) => {
    try {
      const n = m.jobs.length / 2;
      const per = decoder.sampleSize;
      const data = new Float32Array(n * per);
      for (let k = 0; k < n; k++) data.set(decoder.decode(m.jobs[2 * k]!, m.jobs[2 * k + 1]!), k * per);
      port.postMessage({ type: 'done', id: m.id, data, stats: decoder.stats() } satisfies DecodeReply, [data.buffer]);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      port.postMessage({ type: 'error', id: m.id, name: err.name, message: err.message, stats: decoder.stats() } satisfies DecodeReply);
    }
  });
}
port.postMessage({ type: 'ready' } satisfies DecodeReply);
