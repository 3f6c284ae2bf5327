// Public surface of the HTTP server.
export {
  createServer,
  isLoopback,
  type ServerOptions,
  type ListenOptions,
  type MinedraftServer,
  type ChatTemplateSource,
} from "./server.js";
