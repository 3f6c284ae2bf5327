// RPC devices: the devices of a ggml rpc-server on this or another machine, registered next to the local
// ones so that a model can be placed on them by name (RPC0, RPC1, ...). The protocol has neither
// authentication nor encryption, so only loopback servers are accepted unless the caller allows remote ones.
// ggml aborts the process when it cannot reach a server, so each one is probed here first (TCP connect
// and the protocol's HELLO, both bounded by a time-out) and a server that is down becomes an error instead.
import { Socket } from "node:net";
import { OptionRangeError } from "../common/validate.js";
import type { NativeAddon } from "./types.js";

export interface RpcEndpoint {
  host: string;
  port: number;
}

/** What adding one server gave: ggml's name for it and its devices' names. */
export interface RpcServerStatus {
  endpoint: string;
  name: string;
  devices: string[];
}

export const RPC_BUILD_HINT = "this build has no RPC backend: npm run build:source -- --gpu <gpu> --rpc";

// ggml splits an endpoint at its first colon, so an IPv6 literal cannot be given
const ENDPOINT = /^([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;

/** HOST:PORT, or undefined when it is not one ggml can use. */
export function parseRpcEndpoint(value: string): RpcEndpoint | undefined {
  const m = ENDPOINT.exec(value);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? { host: m[1]!, port } : undefined;
}

/** 127.0.0.0/8 and localhost: the addresses no other machine can reach. */
export function isLoopback(host: string): boolean {
  if (host.toLowerCase() === "localhost") return true;
  const parts = host.split(".");
  return parts.length === 4 && parts[0] === "127" && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/** The rpc option's rule (BACKEND_OPTIONS): distinct HOST:PORT strings. */
export function checkRpcList(value: unknown): "type" | "range" | null {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) return "type";
  if (new Set(value).size !== value.length || !value.every((v) => parseRpcEndpoint(v))) return "range";
  return null;
}

/** Refuses a non-loopback server unless allowed: anyone on the network path can read and drive the protocol. */
export function checkRpcRemote(endpoints: readonly string[], allowRemote: boolean, option = "rpc"): void {
  if (allowRemote) return;
  const remote = endpoints.filter((e) => !isLoopback(parseRpcEndpoint(e)?.host ?? ""));
  if (remote.length > 0)
    throw new OptionRangeError(
      option,
      `${option}: ${remote.join(", ")} is not a loopback address; the RPC protocol has no authentication or ` +
        "encryption, so a remote server must be allowed explicitly (rpcAllowRemote: true, --rpc-allow-remote) " +
        "and reached only over a network you trust",
    );
}

/** How long a server may take to accept the connection and answer HELLO. */
export const RPC_PROBE_TIMEOUT_MS = 5000;

const HELLO_CMD = 14; // RPC_CMD_HELLO (ggml-rpc.cpp: "must be always 14")
const CONN_CAPS = 24; // RPC_CONN_CAPS_SIZE (ggml-rpc/transport.h)

/**
 * Connects, sends HELLO (no transport upgrade) and reads the server's protocol version; rejects with a reason
 * naming the server when it is down, silent (busy with another client: a server serves one at a time), or
 * speaks another major version.
 */
export function probeRpcServer(
  endpoint: string,
  expect: { major: number; minor: number },
  timeoutMs = RPC_PROBE_TIMEOUT_MS,
): Promise<{ major: number; minor: number; patch: number }> {
  const ep = parseRpcEndpoint(endpoint);
  if (!ep) return Promise.reject(new RangeError(`RPC server ${endpoint}: expected HOST:PORT`));
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let got = Buffer.alloc(0);
    const done = (error: Error | null, version?: { major: number; minor: number; patch: number }, reset = false) => {
      clearTimeout(timer);
      // A busy server still holds the HELLO in its queue: a plain close would have it answer into a closed
      // socket later, and rpc-server dies of the SIGPIPE. A reset discards the HELLO with the connection.
      if (reset && !socket.destroyed && socket.readyState === "open") socket.resetAndDestroy();
      else socket.destroy();
      if (error) reject(error);
      else resolve(version!);
    };
    const timer = setTimeout(
      () =>
        done(
          new Error(
            `RPC server ${endpoint} did not answer within ${timeoutMs} ms (down, busy with another client, ` +
              "or not a ggml rpc-server)",
          ),
          undefined,
          true,
        ),
      timeoutMs,
    );
    socket.once("error", (e: NodeJS.ErrnoException) =>
      done(new Error(`RPC server ${endpoint} cannot be reached: ${e.code ?? e.message} (is rpc-server running?)`)),
    );
    socket.once("close", () => done(new Error(`RPC server ${endpoint} closed the connection during the handshake`)));
    socket.on("data", (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 8 + 4) return;
      const size = Number(got.readBigUInt64LE(0));
      if (size !== 4 + CONN_CAPS)
        return done(new Error(`RPC server ${endpoint}: unexpected HELLO reply (not a ggml rpc-server?)`));
      const version = { major: got[8]!, minor: got[9]!, patch: got[10]! };
      if (version.major !== expect.major || version.minor > expect.minor)
        return done(
          new Error(
            `RPC server ${endpoint} speaks RPC protocol ${version.major}.${version.minor}.${version.patch}, this build ` +
              `${expect.major}.${expect.minor}: run an rpc-server built from the same llama.cpp`,
          ),
        );
      done(null, version);
    });
    socket.connect(ep.port, ep.host, () => {
      const hello = Buffer.alloc(1 + 8 + CONN_CAPS);
      hello[0] = HELLO_CMD;
      hello.writeBigUInt64LE(BigInt(CONN_CAPS), 1);
      socket.write(hello);
    });
  });
}

type RpcAddon = Pick<NativeAddon, "rpcSupported" | "addRpcServer" | "rpcProtocol">;

/** Probes then registers each server's devices, in order (ggml numbers the devices RPC0, RPC1, ... as added). */
export async function addRpcServers(
  addon: RpcAddon,
  endpoints: readonly string[],
  timeoutMs = RPC_PROBE_TIMEOUT_MS,
): Promise<RpcServerStatus[]> {
  if (endpoints.length === 0) return [];
  if (!addon.rpcSupported()) throw new Error(RPC_BUILD_HINT);
  const added: RpcServerStatus[] = [];
  for (const endpoint of endpoints) {
    await probeRpcServer(endpoint, addon.rpcProtocol, timeoutMs);
    added.push({ endpoint, ...addon.addRpcServer(endpoint) });
  }
  return added;
}
