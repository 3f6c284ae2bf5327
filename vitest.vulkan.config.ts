// npm run test:vulkan: the GPU code path on a Vulkan device, Mesa's software llvmpipe where there is no GPU
// (not in the default run: it needs libvulkan1 + mesa-vulkan-drivers, and llvmpipe compiles its shaders once).
import { defineConfig } from "vitest/config";
import { sharedTestOptions } from "./vitest.config.js";

export default defineConfig({ test: { ...sharedTestOptions, include: ["test/vulkan/**/*.test.ts"] } });
