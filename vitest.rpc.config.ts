// npm run test:rpc: models on ggml rpc-server devices (loopback). Outside the default run: it needs the
// RPC build (npm run build:source -- --gpu cpu --rpc), and fails, never skips, without it.
import { defineConfig } from "vitest/config";
import { sharedTestOptions } from "./vitest.config.js";

export default defineConfig({
  test: { ...sharedTestOptions, include: ["test/rpc/**/*.rpc.ts"], testTimeout: 180_000 },
});
