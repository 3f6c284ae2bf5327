import path from "node:path";
import { describe, expect, it } from "vitest";
import { isRemoteModelUri, resolveModelSource } from "../../src/models/resolve.js";

describe("model sources", () => {
  it("local paths resolve to absolute paths; URIs are recognised", async () => {
    expect(await resolveModelSource("models/x.gguf")).toBe(path.resolve("models/x.gguf"));
    expect(isRemoteModelUri("hf:user/repo/file.gguf")).toBe(true);
    expect(isRemoteModelUri("https://example.org/m.gguf")).toBe(true);
    expect(isRemoteModelUri("./hf/file.gguf")).toBe(false);
  });

  it("an unreachable host gives a clear error that names the URI, quickly", async () => {
    const uri = "https://minedraft.invalid/model.gguf"; // .invalid never resolves
    const t0 = Date.now();
    await expect(
      resolveModelSource(uri, { directory: path.join(process.cwd(), ".cache", "hf-test"), probeTimeoutMs: 5000 }),
    ).rejects.toThrow(
      /cannot download model https:\/\/minedraft\.invalid\/model\.gguf: https:\/\/minedraft\.invalid is unreachable/,
    );
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it("rejects an empty source", async () => {
    await expect(resolveModelSource("  ")).rejects.toThrow(TypeError);
  });
});
