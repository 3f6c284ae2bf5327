// Synthetic model pairs for tests, made once into the cache (<repo>/.cache/models or $MINEDRAFT_CACHE).
import { ensureSyntheticPair } from "../../src/synth/index.js";

/** The tiny f32 pair: exact arithmetic for losslessness tests, made in about a second. */
export function tinyPair() {
  return ensureSyntheticPair(undefined, { preset: "tiny", dtype: "f32" });
}

/** A tiny pair with another tokenizer, for incompatibility tests. */
export function tinyPairOtherVocab() {
  return ensureSyntheticPair(undefined, { preset: "tiny", dtype: "f32", vocab: "gpt-2" });
}
