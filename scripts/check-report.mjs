#!/usr/bin/env node
// Renders a minedraft HTML report with headless Chromium and checks the screenshot is not blank.
//   node scripts/check-report.mjs REPORT.html
// Exits 0 with "skipped: chromium not installed" when /usr/bin/chromium is missing; 1 when the
// render fails or the screenshot is (nearly) uniform; 2 on bad usage.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { inflateSync } from "node:zlib";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WINDOW = [1000, 1800];

function fail(message, code = 1) {
  process.stderr.write(`check-report: ${message}\n`);
  process.exit(code);
}

/** Decodes an 8-bit, non-interlaced PNG (what Chromium writes) to { width, height, channels, pixels }. */
function decodePng(buf) {
  if (buf.length < 8 || buf.readUInt32BE(0) !== 0x89504e47) throw new Error("not a PNG");
  let off = 8;
  let width = 0,
    height = 0,
    depth = 0,
    colorType = 0,
    interlace = 0;
  const idat = [];
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString("ascii", off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8];
      colorType = data[9];
      interlace = data[12];
    } else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    off += 12 + len;
  }
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType];
  if (depth !== 8 || !channels || interlace !== 0)
    throw new Error(`unsupported PNG (depth ${depth}, colour type ${colorType}, interlace ${interlace})`);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? out[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      let v = line[i];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c,
          pa = Math.abs(p - a),
          pb = Math.abs(p - b),
          pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[i] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Share of pixels that differ from the background (the top-left pixel) and the number of distinct colours. */
function inkStats({ width, height, channels, pixels }) {
  const bg = pixels.subarray(0, channels).toString("hex");
  const colours = new Set();
  let ink = 0;
  for (let p = 0; p < width * height; p++) {
    const px = pixels.subarray(p * channels, (p + 1) * channels).toString("hex");
    if (px !== bg) ink++;
    if (colours.size < 5000) colours.add(px);
  }
  return { inkFraction: ink / (width * height), colours: colours.size };
}

function run(file, args, timeoutMs) {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ error, stdout, stderr }),
    );
  });
}

async function main() {
  const report = process.argv[2];
  if (!report || process.argv.length > 3) fail("usage: node scripts/check-report.mjs REPORT.html", 2);
  if (!existsSync(report)) fail(`no such file: ${report}`);
  const html = await readFile(report, "utf8");
  if (!html.includes("<svg")) fail(`${report} has no inline <svg>`);
  if (!existsSync(CHROMIUM)) {
    process.stdout.write(`skipped: chromium not installed (${CHROMIUM} not found); ${report} was not rendered\n`);
    return;
  }
  const tmp = await mkdtemp(path.join(os.tmpdir(), "minedraft-check-report-"));
  try {
    const png = path.join(tmp, "report.png");
    const args = [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--hide-scrollbars",
      `--user-data-dir=${path.join(tmp, "profile")}`,
      `--window-size=${WINDOW.join(",")}`,
      `--screenshot=${png}`,
      pathToFileURL(path.resolve(report)).href,
    ];
    const { error, stderr } = await run(CHROMIUM, args, 90_000);
    if (!existsSync(png))
      fail(
        `chromium wrote no screenshot${error ? ` (${error.message.split("\n")[0]})` : ""}` +
          (stderr ? `: ${String(stderr).trim().split("\n").slice(-1)[0]}` : ""),
      );
    const size = (await stat(png)).size;
    const image = decodePng(await readFile(png));
    const { inkFraction, colours } = inkStats(image);
    const summary =
      `${image.width}x${image.height}, ${size} bytes, ${(inkFraction * 100).toFixed(1)}% non-background pixels, ` +
      `${colours} colours`;
    // a blank or error page is nearly one colour; the report has text, bars and coloured lanes
    if (size < 10_000 || inkFraction < 0.02 || colours < 16) fail(`screenshot looks blank or trivial: ${summary}`);
    process.stdout.write(`ok: ${report} rendered (${summary})\n`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
