// `minedraft inspect`: what a GGUF model is, whether a draft fits a target, and which devices llama.cpp sees.
import { Command, Option } from "commander";
import { configureBackends, LlamaModel, devices, gpuBackendStatus, type LogLevel } from "../../index.js";
import { addBackendOptions, type BackendFlags, backendsFromFlags } from "../backend-flags.js";
import { addVerboseOption, configureCommand, usageError } from "../command-setup.js";
import { LOG_LEVELS } from "../engine-flags.js";
import { bytes, count, textTable } from "../format.js";
import { modelFile } from "../model-source.js";

interface InspectFlags extends BackendFlags {
  devices?: boolean;
  json?: boolean;
  logLevel: LogLevel;
}

export function inspectCommand(): Command {
  const cmd = new Command("inspect")
    .description(
      "show a model's architecture, size, quantization and vocabulary; with two models, whether the second can " +
        "draft for the first",
    )
    .summary("describe models, check a draft/target pair, list devices")
    .argument("[model]", "target model (GGUF file or hf: URI)")
    .argument("[draft]", "draft model to check against the target")
    .option("--devices", "list the backends and devices llama.cpp found")
    .option("--json", "print JSON")
    .addOption(new Option("--log-level <level>", "llama.cpp log level").choices(LOG_LEVELS).default("error"));
  addBackendOptions(cmd);
  addVerboseOption(cmd);
  configureCommand(cmd, "minedraft inspect");
  return cmd.action((model: string | undefined, draft: string | undefined, flags: InspectFlags, command: Command) =>
    runInspect(model, draft, flags, command),
  );
}

type ModelSummary = ReturnType<typeof summarize>;

function summarize(model: LlamaModel) {
  const { meta: _meta, chatTemplate, ...info } = model.info;
  const tokenText = (id: number) => (id >= 0 && id < info.nVocab ? model.tokenText(id) : null);
  return {
    ...info,
    bosText: tokenText(info.bos),
    eosText: tokenText(info.eos),
    hasChatTemplate: chatTemplate !== null && chatTemplate !== "",
    chatTemplate,
  };
}

function describeModel(label: string, m: ModelSummary): string {
  const token = (id: number, text: string | null) =>
    id < 0 ? "none" : `${id}${text !== null ? ` ${JSON.stringify(text)}` : ""}`;
  const rows: [string, string][] = [
    ["path", m.path],
    ["name", m.name || "-"],
    [
      "architecture",
      `${m.architecture} (${m.nLayer} layer${m.nLayer === 1 ? "" : "s"}, width ${m.nEmbd}, ${m.nHead} heads, ` +
        `${m.nHeadKv} KV heads)`,
    ],
    ["parameters", `${count(m.nParams)} (${m.nParams})`],
    ["quantization", m.quantization],
    ["file size", `${bytes(m.fileSize)} (${m.fileSize} bytes)`],
    ["context length", `${m.nCtxTrain} tokens (trained)`],
    ["vocab", `${m.vocabType}, ${m.nVocab} tokens`],
    ["BOS / EOS", `${token(m.bos, m.bosText)} / ${token(m.eos, m.eosText)}`],
    ["add BOS / EOS", `${m.addBos ? "yes" : "no"} / ${m.addEos ? "yes" : "no"}`],
    ["chat template", m.hasChatTemplate ? `present (${m.chatTemplate!.length} characters)` : "none"],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return [`${label}:`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join("\n");
}

async function runInspect(
  modelArg: string | undefined,
  draftArg: string | undefined,
  flags: InspectFlags,
  cmd: Command,
): Promise<void> {
  if (!modelArg && !flags.devices) usageError(cmd, "give a model to inspect, or --devices");
  const backends = backendsFromFlags(flags);
  if (backends) configureBackends(backends);
  const loaded: LlamaModel[] = [];
  try {
    const load = async (source: string, role: string) => {
      // metadata only: keep the weights off any GPU
      const m = await LlamaModel.load(await modelFile(source, role), { gpuLayers: 0, logLevel: flags.logLevel });
      loaded.push(m);
      return m;
    };
    const target = modelArg ? await load(modelArg, "target") : undefined;
    const draft = draftArg ? await load(draftArg, "draft") : undefined;
    const why = target && draft ? target.incompatibilityWith(draft) : undefined;
    const found = flags.devices ? await devices() : undefined;
    const gpu = flags.devices ? gpuBackendStatus() : undefined;

    const models = [target, draft].filter((m): m is LlamaModel => m !== undefined).map(summarize);
    if (flags.json) {
      const doc = {
        models,
        ...(draft ? { compatibility: { compatible: why === null, reason: why ?? null } } : {}),
        ...(found ? { devices: found, gpuBackends: gpu } : {}),
      };
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
      return;
    }
    const parts: string[] = models.map((m, i) =>
      describeModel(models.length === 2 ? (i === 0 ? "target" : "draft") : "model", m),
    );
    if (draft)
      parts.push(
        why === null
          ? "compatibility: compatible (the draft can draft for the target)"
          : `compatibility: INCOMPATIBLE: ${why}`,
      );
    if (found) {
      parts.push(
        `devices:\n${textTable(
          ["name", "type", "backend", "memory free / total", "description"],
          found.map((d) => [
            d.name,
            d.type,
            d.backend,
            d.memoryTotal > 0 ? `${bytes(d.memoryFree)} / ${bytes(d.memoryTotal)}` : "-",
            d.description,
          ]),
          5,
        )}`,
      );
      for (const g of gpu ?? []) {
        parts.push(
          `${g.backend}: ` +
            (g.loaded && g.devices > 0
              ? `in use (${g.devices} device${g.devices === 1 ? "" : "s"})`
              : `not in use: ${g.reason}`),
        );
      }
    }
    process.stdout.write(`${parts.join("\n\n")}\n`);
  } finally {
    for (const m of loaded) m.dispose();
  }
}
