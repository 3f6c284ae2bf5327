// RPC devices without an RPC build: the rpc option's validation, the loopback rule, the probe that turns a
// server that is down (which ggml would abort on) into an error naming it, and the error of a build without RPC.
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { configureBackends, loadAddon } from "../../src/index.js";
import { rankGpus, resolvePlacement } from "../../src/native/placement.js";
import {
  addRpcServers,
  checkRpcList,
  checkRpcRemote,
  isLoopback,
  parseRpcEndpoint,
  probeRpcServer,
  RPC_BUILD_HINT,
} from "../../src/native/rpc.js";

const PROTO = { major: 6, minor: 0 };
const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** How the fake servers' connections ended: "reset" (ECONNRESET) or "closed". */
const endings: string[] = [];

/** A TCP server on a free loopback port that answers a HELLO with `reply` (or never, when null). */
async function fakeServer(reply: Buffer | null): Promise<string> {
  const server = createServer((sock) => {
    sock.on("error", (e: NodeJS.ErrnoException) => endings.push(e.code === "ECONNRESET" ? "reset" : String(e.code)));
    sock.on("end", () => endings.push("closed"));
    sock.once("data", () => {
      if (reply) sock.write(reply);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no port");
  return `127.0.0.1:${address.port}`;
}

function helloReply(major: number, minor: number, patch = 0): Buffer {
  const b = Buffer.alloc(8 + 4 + 24);
  b.writeBigUInt64LE(28n, 0);
  b[8] = major;
  b[9] = minor;
  b[10] = patch;
  return b;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<string> {
  const endpoint = await fakeServer(null);
  const server = servers.pop()!;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return endpoint;
}

describe("rpc option", () => {
  it.each([
    ["127.0.0.1:50052", { host: "127.0.0.1", port: 50052 }],
    ["localhost:1", { host: "localhost", port: 1 }],
    ["gpu-box.lan:65535", { host: "gpu-box.lan", port: 65535 }],
    ["127.0.0.1", undefined],
    ["127.0.0.1:0", undefined],
    ["127.0.0.1:65536", undefined],
    [":50052", undefined],
    ["[::1]:50052", undefined],
    ["host:port", undefined],
    ["a b:1", undefined],
  ])("parses %s", (value, expected) => {
    expect(parseRpcEndpoint(value)).toEqual(expected);
  });

  it("knows loopback addresses", () => {
    expect(["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST"].every(isLoopback)).toBe(true);
    expect(["10.0.0.1", "128.0.0.1", "127.0.0.256", "localhost.evil.com", "0.0.0.0", "127.0.0"].some(isLoopback)).toBe(
      false,
    );
  });

  it("takes distinct HOST:PORT strings", () => {
    expect(checkRpcList(["127.0.0.1:1", "127.0.0.1:2"])).toBeNull();
    expect(checkRpcList([])).toBeNull();
    expect(checkRpcList("127.0.0.1:1")).toBe("type");
    expect(checkRpcList([50052])).toBe("type");
    expect(checkRpcList(["127.0.0.1:1", "127.0.0.1:1"])).toBe("range");
    expect(checkRpcList(["127.0.0.1"])).toBe("range");
  });

  it("configureBackends refuses a bad address, and a remote one unless allowed", () => {
    expect(() => configureBackends({ rpc: ["nope"] })).toThrow(/rpc must be .*HOST:PORT/);
    expect(() => configureBackends({ rpc: "127.0.0.1:1" as unknown as string[] })).toThrow(TypeError);
    expect(() => configureBackends({ rpc: ["127.0.0.1:1", "10.1.2.3:50052"] })).toThrow(
      /10\.1\.2\.3:50052 is not a loopback address.*rpcAllowRemote/,
    );
    expect(() => configureBackends({ rpc: ["127.0.0.1:1"], rpcTimeoutMs: -1 })).toThrow(/rpcTimeoutMs/);
    expect(() => configureBackends({ rpc: ["127.0.0.1:1"], rpcTimeoutMs: 1.5 })).toThrow(/rpcTimeoutMs/);
    expect(() => checkRpcRemote(["10.1.2.3:50052", "gpu-box:1"], true)).not.toThrow();
    expect(() => checkRpcRemote(["localhost:50052"], false)).not.toThrow();
  });
});

describe("rpc server probe", () => {
  it("names a server that is down", async () => {
    const endpoint = await closedPort();
    await expect(probeRpcServer(endpoint, PROTO, 2000)).rejects.toThrow(
      new RegExp(`RPC server ${endpoint} cannot be reached: ECONNREFUSED`),
    );
  });

  it("gives up on a server that accepts but never answers, in bounded time", async () => {
    const endpoint = await fakeServer(null);
    const t0 = Date.now();
    await expect(probeRpcServer(endpoint, PROTO, 300)).rejects.toThrow(
      new RegExp(`RPC server ${endpoint} did not answer within 300 ms`),
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    // reset, not closed: a busy rpc-server answers a queued HELLO later, and a closed socket kills it (SIGPIPE)
    await new Promise((r) => setTimeout(r, 100));
    expect(endings.at(-1)).toBe("reset");
  });

  it("accepts the protocol version it speaks and refuses another", async () => {
    await expect(probeRpcServer(await fakeServer(helloReply(6, 0, 0)), PROTO, 2000)).resolves.toEqual({
      major: 6,
      minor: 0,
      patch: 0,
    });
    await expect(probeRpcServer(await fakeServer(helloReply(5, 0)), PROTO, 2000)).rejects.toThrow(
      /speaks RPC protocol 5\.0\.0, this build 6\.0/,
    );
    await expect(
      probeRpcServer(await fakeServer(Buffer.from("HTTP/1.1 400 Bad\r\n\r\n")), PROTO, 2000),
    ).rejects.toThrow(/not a ggml rpc-server/);
  });

  it("a build without the RPC backend says how to get one, before any connection", async () => {
    const calls: string[] = [];
    const fake = {
      rpcSupported: () => false,
      addRpcServer: (e: string) => {
        calls.push(e);
        return { name: "", devices: [] };
      },
      rpcProtocol: PROTO,
    };
    await expect(addRpcServers(fake, ["127.0.0.1:1"])).rejects.toThrow(RPC_BUILD_HINT);
    expect(calls).toEqual([]);
    await expect(addRpcServers(fake, [])).resolves.toEqual([]);
  });

  it("the real addon: without RPC it refuses with the build command, with RPC a down server is an error", async () => {
    const addon = await loadAddon();
    const endpoint = await closedPort();
    await expect(addRpcServers(addon, [endpoint], 2000)).rejects.toThrow(
      addon.rpcSupported() ? `RPC server ${endpoint} cannot be reached` : RPC_BUILD_HINT,
    );
    expect(addon.rpcProtocol.major).toBe(PROTO.major);
  });
});

describe("RPC devices in the default placement", () => {
  const rpc0 = {
    name: "RPC0",
    description: "127.0.0.1:50052",
    type: "gpu" as const,
    backend: "RPC",
    memoryFree: 8e10,
    memoryTotal: 8e10,
  };
  const cpu = {
    name: "CPU",
    description: "cpu",
    type: "cpu" as const,
    backend: "CPU",
    memoryFree: 1e10,
    memoryTotal: 1e10,
  };
  const cuda = {
    name: "CUDA0",
    description: "gpu",
    type: "gpu" as const,
    backend: "CUDA",
    memoryFree: 1e10,
    memoryTotal: 1e10,
  };

  it("are never chosen by default, only when named", () => {
    expect(rankGpus([cpu, rpc0, cuda]).map((d) => d.name)).toEqual(["CUDA0"]);
    const r = resolvePlacement([cpu, rpc0], { hasDraft: true, overlapped: true });
    expect([r.targetDevice, r.draftDevice]).toEqual(["cpu", "cpu"]);
    const named = resolvePlacement([cpu, rpc0], { draft: "RPC0", hasDraft: true, overlapped: true });
    expect([named.targetDevice, named.draftDevice]).toEqual(["cpu", "RPC0"]);
  });
});
