// Whether a context's KV cache fits the device that holds the model's layers, asked before llama.cpp creates it:
// past the device's memory llama.cpp fails cleanly, but a single KV tensor beyond what the device can address in
// one buffer (a Vulkan device's maxStorageBufferRange) makes ggml's scheduler abort the whole process.
import type { DeviceInfo } from "./types.js";

export interface KvShape {
  /** layers whose KV cache lives on the device */
  layers: number;
  /** K and V widths of one layer (head size x KV heads) */
  nEmbdK: number;
  nEmbdV: number;
  /** cells over all sequences, and the streams they are split into (1 when unified) */
  cells: number;
  streams: number;
}

const BYTES_F16 = 2;
const MiB = 1024 * 1024;
const size = (bytes: number) =>
  bytes >= 1024 * MiB ? `${(bytes / (1024 * MiB)).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`;

/** Why the KV cache cannot be created on the device, or undefined when it can. */
export function kvFitProblem(
  device: DeviceInfo,
  kv: KvShape,
  holdsTensor: (ne: readonly number[]) => boolean,
): string | undefined {
  if (device.type === "cpu" || kv.layers === 0) return undefined;
  const perLayer = (kv.nEmbdK + kv.nEmbdV) * kv.cells * BYTES_F16;
  const total = perLayer * kv.layers;
  if (device.memoryFree > 0 && total > device.memoryFree)
    return (
      `the KV cache (${size(total)} for ${kv.cells} tokens over ${kv.layers} layers) does not fit ${device.name}'s ` +
      `${size(device.memoryFree)} free: lower contextSize or batchSize (or offload fewer layers)`
    );
  const widest = Math.max(kv.nEmbdK, kv.nEmbdV);
  if (!holdsTensor([widest, kv.cells / kv.streams, kv.streams]))
    return (
      `one layer's KV tensor (${size(widest * kv.cells * BYTES_F16)} for ${kv.cells} tokens) is larger than ` +
      `${device.name} can address in one buffer: lower contextSize or batchSize`
    );
  return undefined;
}
