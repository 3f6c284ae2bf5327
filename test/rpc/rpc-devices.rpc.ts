// Models on RPC devices (npm run test:rpc): ggml rpc-servers on loopback, the draft, the target or part of the
// target on one, greedy sd/psd token-identical to target-only ar on the CPU; inspect --devices lists them; a
// server killed mid-run fails the requests on it (naming it) and the process lives on.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEngine, type CreateEngineOptions } from "../../src/create-engine.js";
import type { Mode } from "../../src/engine/types.js";
import { configureBackends, LlamaContext, LlamaModel, loadAddon, rpcServerStatus } from "../../src/index.js";
import { probeRpcServer } from "../../src/native/rpc.js";
import { ensureBuilt, repoRoot, runCli } from "../cli/helpers.js";
import { tinyPair } from "../helpers/models.js";

const BUILD = "npm run build:source -- --gpu cpu --rpc";
const RPC_SERVER = path.join(repoRoot, "build-source", "lib", "rpc-server");
const PROTO = { major: 6, minor: 0 };
const PROMPTS = ["Once upon a time", "The capital of France is", "def fibonacci(n):", "1, 2, 3, 4,"];
const MAX_TOKENS = 24;

const running: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const a = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  if (!a || typeof a === "string") throw new Error("no free port");
  return a.port;
}

/** rpc-server on a free loopback port with one thread, once it answers HELLO. */
async function startRpcServer(): Promise<{ endpoint: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(RPC_SERVER, ["-H", "127.0.0.1", "-p", String(port), "-t", "1"], { stdio: "ignore" });
  running.push(proc);
  const endpoint = `127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await probeRpcServer(endpoint, PROTO, 2000);
      return { endpoint, proc };
    } catch (e) {
      if (Date.now() > deadline || proc.exitCode !== null) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

let pair: { target: string; draft: string };
let local: { endpoint: string; proc: ChildProcess };
let rpcDevice: string;

beforeAll(async () => {
  if (!existsSync(RPC_SERVER)) throw new Error(`test:rpc needs ${RPC_SERVER}, which is missing: run ${BUILD}`);
  pair = await tinyPair();
  // the RPC servers are added when the addon loads: this process's server first (a build without RPC fails here,
  // with the build command)
  local = await startRpcServer();
  configureBackends({ rpc: [local.endpoint] });
  await loadAddon();
  rpcDevice = rpcServerStatus()[0]!.devices[0]!;
  ensureBuilt();
});

afterAll(() => {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
});

describe("RPC devices on loopback", () => {
  // each server serves one client at a time: the CLI runs get servers of their own
  it("inspect --devices --rpc lists the server's device with its memory", async () => {
    const s = await startRpcServer();
    const r = await runCli(["inspect", "--devices", "--json", "--rpc", s.endpoint]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      devices: { name: string; backend: string; description: string; memoryTotal: number }[];
    };
    const rpc = doc.devices.filter((d) => d.backend === "RPC");
    expect(rpc).toEqual([expect.objectContaining({ name: "RPC0", description: s.endpoint })]);
    expect(rpc[0]!.memoryTotal).toBeGreaterThan(0);
    s.proc.kill("SIGKILL");
  });

  it("a server that is down is an error naming it, not an abort", async () => {
    const port = await freePort();
    const r = await runCli(["inspect", "--devices", "--rpc", `127.0.0.1:${port}`]);
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`RPC server 127.0.0.1:${port} cannot be reached: ECONNREFUSED`);
  });

  it("a remote server is refused without --rpc-allow-remote", async () => {
    const r = await runCli(["inspect", "--devices", "--rpc", "192.0.2.1:50052"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/192\.0\.2\.1:50052 is not a loopback address.*--rpc-allow-remote/);
  });

  describe("in this process", () => {
    const run = async (mode: Mode, extra: Partial<CreateEngineOptions>) => {
      const e = await createEngine({
        mode,
        batchSize: PROMPTS.length,
        draftTokens: 4,
        contextSize: 256,
        target: { model: pair.target, device: "cpu", threads: 1 },
        ...(mode === "ar" ? {} : { draft: { model: pair.draft, device: "cpu", threads: 1 } }),
        ...extra,
      });
      try {
        const results = await Promise.all(PROMPTS.map((p) => e.generate(p, { maxTokens: MAX_TOKENS })));
        return { tokens: results.map((r) => r.tokens), placement: e.placement };
      } finally {
        await e.close();
      }
    };

    let reference: (readonly number[])[];
    beforeAll(async () => {
      reference = (await run("ar", {})).tokens;
      expect(reference.every((t) => t.length === MAX_TOKENS)).toBe(true);
    });

    it("the server's device is named RPC0 and described by its endpoint", async () => {
      expect(rpcDevice).toBe("RPC0");
      const addon = await loadAddon();
      expect(addon.devices().find((d) => d.name === rpcDevice)).toMatchObject({
        backend: "RPC",
        description: local.endpoint,
      });
    });

    it("deviceArgmax: off by default for a loopback server (round trips cost more than the logits), on when asked", async () => {
      const model = await LlamaModel.load(pair.draft, { device: rpcDevice });
      try {
        for (const [options, on] of [
          [{}, false],
          [{ deviceArgmax: true }, true],
        ] as const) {
          const ctx = await LlamaContext.create(model, { contextSize: 64, ...options });
          expect(ctx.raw.info().deviceArgmax).toBe(on);
          await ctx.dispose();
        }
      } finally {
        model.dispose();
      }
    });

    it.each([
      ["sd", false],
      ["psd", false],
      ["sd", true],
      ["psd", true],
    ] as const)(
      "%s with the draft on the RPC device (deviceArgmax %s) matches ar on the CPU",
      async (mode, deviceArgmax) => {
        const r = await run(mode, { draft: { model: pair.draft, device: rpcDevice, threads: 1, deviceArgmax } });
        expect(r.placement.draftDevice).toBe(rpcDevice);
        expect(r.tokens).toEqual(reference);
      },
    );

    it("a server busy with this process is an error for another one, after the probe's time-out", async () => {
      const e = await createEngine({
        mode: "sd",
        contextSize: 256,
        target: { model: pair.target, device: "cpu", threads: 1 },
        draft: { model: pair.draft, device: rpcDevice, threads: 1 },
      });
      try {
        const t0 = Date.now();
        const r = await runCli(["inspect", "--devices", "--rpc", local.endpoint]);
        expect(r.signal).toBeNull();
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`RPC server ${local.endpoint} did not answer within 5000 ms`);
        expect(Date.now() - t0).toBeLessThan(20_000);
      } finally {
        await e.close();
      }
    });

    it.each([false, true])(
      "psd with the whole target on the RPC device (deviceArgmax %s) and the draft on the CPU matches ar",
      async (deviceArgmax) => {
        const r = await run("psd", { target: { model: pair.target, device: rpcDevice, threads: 1, deviceArgmax } });
        expect(r.placement.targetDevice).toBe(rpcDevice);
        expect(r.tokens).toEqual(reference);
      },
    );

    it.each(["sd", "psd"] as const)("%s with the target's last layer on the RPC device matches ar", async (mode) => {
      const r = await run(mode, { target: { model: pair.target, device: rpcDevice, gpuLayers: 1, threads: 1 } });
      expect(r.placement.targetDevice).toBe(rpcDevice);
      expect(r.tokens).toEqual(reference);
    });
  });

  // SIGKILL: the connection is reset at once. SIGSTOP: the server holds the connection and says nothing, as a hung
  // process or a cut link does; the socket time-out (rpcTimeoutMs) ends the wait.
  it.each([
    ["the draft", "sd", "SIGKILL", "cpu", "RPC0", "lost"],
    ["the target", "psd", "SIGKILL", "RPC0", "cpu", "lost"],
    ["the draft", "psd", "SIGSTOP", "cpu", "RPC0", "did not answer within 2000 ms"],
  ] as const)(
    "a server holding %s (%s), ended mid-run by %s, fails the requests on it, naming it; the process lives on and closes",
    async (_what, mode, ending, targetDevice, draftDevice, reason) => {
      const s = await startRpcServer();
      const script = `
      import { configureBackends, createEngine } from ${JSON.stringify(path.join(repoRoot, "dist", "index.js"))};
      configureBackends({ rpc: [${JSON.stringify(s.endpoint)}], rpcTimeoutMs: 2000 });
      const e = await createEngine({ mode: "${mode}", contextSize: 2048, draftTokens: 4,
        target: { model: ${JSON.stringify(pair.target)}, device: "${targetDevice}", threads: 1 },
        draft: { model: ${JSON.stringify(pair.draft)}, device: "${draftDevice}", threads: 1 } });
      process.stdout.write("generating\\n");
      try {
        for (;;) await e.generate("Once upon a time", { maxTokens: 1500 });
      } catch (error) {
        process.stdout.write("failed: " + error.message + "\\n");
      }
      await e.generate("Again", { maxTokens: 8 }).then(
        () => process.stdout.write("second: ok\\n"),
        (error) => process.stdout.write("second failed: " + error.message + "\\n"),
      );
      await e.close();
      process.stdout.write("closed\\n");`;
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      running.push(child);
      let stdout = "";
      let stderr = "";
      child.stderr!.on("data", (d) => {
        stderr += String(d);
      });
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (d) => {
          stdout += String(d);
          if (stdout.includes("generating")) resolve();
        });
        child.once("exit", () => reject(new Error(`the child ended before generating: ${stderr}`)));
      });
      await new Promise((r) => setTimeout(r, 500));
      s.proc.kill(ending);
      const t0 = Date.now();
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        child.once("exit", (c, sig) => {
          clearTimeout(timer);
          resolve([c, sig]);
        });
      });
      expect(Date.now() - t0).toBeLessThan(30_000);
      // scripts/patches/ggml-rpc-lost-server.patch: the dispatcher's failure reaches the waiting call as an exception
      expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });
      expect(stdout).toContain(`failed: `);
      expect(stdout).toContain(`RPC server ${s.endpoint} ${reason}`);
      // that context is unusable now: the next request fails too, with the same reason; nothing aborts
      expect(stdout).toContain(`second failed: `);
      expect(stdout).toMatch(new RegExp(`second failed: .*unusable: RPC server .* ${reason}`));
      expect(stdout).toContain("closed");
      s.proc.kill("SIGKILL");
    },
  );

  it("a server gone before a later model load fails that load (or the device query), not the process", async () => {
    const s = await startRpcServer();
    const script = `
      import { configureBackends, createEngine } from ${JSON.stringify(path.join(repoRoot, "dist", "index.js"))};
      configureBackends({ rpc: [${JSON.stringify(s.endpoint)}], rpcTimeoutMs: 2000 });
      const open = () => createEngine({ mode: "sd", contextSize: 256,
        target: { model: ${JSON.stringify(pair.target)}, device: "cpu", threads: 1 },
        draft: { model: ${JSON.stringify(pair.draft)}, device: "RPC0", threads: 1 } });
      const e = await open();
      await e.generate("Once upon a time", { maxTokens: 4 });
      await e.close();
      process.stdout.write("first closed\\n");
      await new Promise((r) => process.stdin.once("data", r));
      await open().then(
        () => process.stdout.write("second: opened\\n"),
        (error) => process.stdout.write("second failed: " + error.message + "\\n"),
      );
      process.stdout.write("done\\n");
      process.exit(0);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "pipe"] });
    running.push(child);
    let stdout = "";
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += String(d);
    });
    child.stdout!.on("data", (d) => {
      stdout += String(d);
      if (stdout.includes("first closed") && s.proc.exitCode === null && s.proc.signalCode === null) {
        s.proc.kill("SIGKILL");
        s.proc.once("exit", () => child.stdin!.write("go\n"));
      }
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.once("exit", (c, sig) => {
        clearTimeout(timer);
        resolve([c, sig]);
      });
    });
    expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });
    expect(stdout).toContain(`second failed: `);
    expect(stdout).toContain(`RPC server ${s.endpoint} cannot be reached`);
    expect(stdout).toContain("done");
  });

  it("minedraft bench runs sd and psd with the draft on an RPC device", async () => {
    const s = await startRpcServer();
    const out = path.join(mkdtempSync(path.join(tmpdir(), "minedraft-rpc-")), "bench.json");
    const r = await runCli(
      [
        "bench",
        "--model",
        pair.target,
        "--draft",
        pair.draft,
        "--modes",
        "sd,psd",
        "--rpc",
        s.endpoint,
        "--device",
        "cpu",
        "--draft-device",
        "RPC0",
        "--threads",
        "1",
        "--draft-threads",
        "1",
        "--max-tokens",
        "16",
        "--repeat",
        "1",
        "--json",
        out,
      ],
      { timeoutMs: 120_000 },
    );
    s.proc.kill("SIGKILL");
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(out, "utf8")) as {
      models: { draft: { device: string } };
      modes: { mode: string; summary: { tokensPerSecond: number } }[];
    };
    expect(report.models.draft.device).toBe("RPC0");
    expect(report.modes.map((m) => m.mode)).toEqual(["sd", "psd"]);
    for (const m of report.modes) expect(m.summary.tokensPerSecond).toBeGreaterThan(0);
  });

  it("--device RPC0,RPC1 --tensor-split splits the target over two servers in those shares; sd and ar match ar", async () => {
    const common = ["--max-tokens", String(MAX_TOKENS), "--seed", "1", "--json", "--ctx-size", "256"];
    const tokensOf = (out: string) => (JSON.parse(out) as { requests: { tokens: number[] }[] }).requests[0]!.tokens;
    const ref = await runCli([
      "generate",
      "--model",
      pair.target,
      "--mode",
      "ar",
      "--device",
      "cpu",
      ...common,
      "--prompt",
      PROMPTS[0]!,
    ]);
    expect(ref.code, ref.stderr).toBe(0);
    // llama.cpp names each weight buffer by its server; it splits the repeating layers and the output layer (which
    // goes with the last device) in the given shares
    const firstServerMiB = async (split: string, mode: string, extra: string[] = []) => {
      const [a, b] = [await startRpcServer(), await startRpcServer()];
      const draft = mode === "ar" ? [] : ["--draft", pair.draft, "--draft-device", "cpu"];
      const r = await runCli([
        "generate",
        "--model",
        pair.target,
        ...draft,
        "--mode",
        mode,
        "--rpc",
        `${a.endpoint},${b.endpoint}`,
        "--device",
        "RPC0,RPC1",
        "--tensor-split",
        split,
        ...extra,
        "--log-level",
        "info",
        ...common,
        "--prompt",
        PROMPTS[0]!,
      ]);
      a.proc.kill("SIGKILL");
      b.proc.kill("SIGKILL");
      expect(r.code, r.stderr).toBe(0);
      expect(tokensOf(r.stdout)).toEqual(tokensOf(ref.stdout));
      const size = (endpoint: string) =>
        Number(
          new RegExp(`RPC\\d\\[${endpoint.replace(/\./g, "\\.")}\\] model buffer size = +([\\d.]+) MiB`).exec(
            r.stderr,
          )?.[1],
        );
      expect(size(a.endpoint), r.stderr).toBeGreaterThan(0);
      expect(size(b.endpoint), r.stderr).toBeGreaterThan(0);
      return size(a.endpoint);
    };
    const most = await firstServerMiB("3,1", "sd", ["--device-argmax"]);
    const least = await firstServerMiB("1,3", "ar");
    expect(most).toBeGreaterThan(2 * least);
  });
});
