import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = path.dirname(fileURLToPath(import.meta.url));

/** what every test run shares (the default one here, npm run test:vulkan in vitest.vulkan.config.ts) */
export const sharedTestOptions = {
  testTimeout: 120_000,
  hookTimeout: 300_000,
  // native tests measure thread overlap: never run two test files at once on a 2-core machine
  fileParallelism: false,
  pool: "forks" as const,
  // synthetic pairs go to the repo's cache (what CI keeps between runs), never the user's ~/.cache/minedraft
  env: { MINEDRAFT_CACHE: process.env.MINEDRAFT_CACHE ?? path.join(root, ".cache", "models") },
};

export default defineConfig({
  test: {
    ...sharedTestOptions,
    include: ["test/**/*.test.ts"],
    // needs a Vulkan device: npm run test:vulkan
    exclude: ["test/vulkan/**", "**/node_modules/**"],
  },
});
