import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // native tests measure thread overlap: never run two test files at once on a 2-core machine
    fileParallelism: false,
    pool: "forks",
  },
});
