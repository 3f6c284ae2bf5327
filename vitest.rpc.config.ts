// npm run test:rpc: models on ggml rpc-server devices (loopback). Outside the default run: it needs the
// RPC build (npm run build:source -- --gpu cpu --rpc), and fails, never skips, without it.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  test: {
    include: ["test/rpc/**/*.rpc.ts"],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    pool: "forks",
    env: { MINEDRAFT_CACHE: process.env.MINEDRAFT_CACHE ?? path.join(root, ".cache", "models") },
  },
});
