// The sharp anchor of bench/media_vs_sharp.py: sharp used as its users do, one autoOrient()
// decode and one clone() pipeline per variant (thumb 150x150 cover, medium and large fit inside
// 800 and 1600, never enlarged), WebP quality 85.
// Usage: node _media_sharp.js SHARP_DIR OUT_DIR REPS FILE...; prints one JSON line.
"use strict";
const path = require("path");
const fs = require("fs");
const [sharpDir, outDir, repsText, ...files] = process.argv.slice(2);
const sharp = require(path.join(sharpDir, "node_modules", "sharp"));

const VARIANTS = [
  ["thumb", { width: 150, height: 150, fit: "cover", withoutEnlargement: true }],
  ["medium", { width: 800, height: 800, fit: "inside", withoutEnlargement: true }],
  ["large", { width: 1600, height: 1600, fit: "inside", withoutEnlargement: true }],
];

async function one(file, keep) {
  const input = await fs.promises.readFile(file);
  const base = sharp(input).autoOrient();
  const outputs = await Promise.all(
    VARIANTS.map(([, resize]) => base.clone().resize(resize).webp({ quality: 85 }).toBuffer()),
  );
  if (keep) {
    const stem = path.basename(file);
    fs.writeFileSync(path.join(outDir, `${stem}.large.webp`), outputs[2]);
  }
  return outputs.reduce((sum, b) => sum + b.length, 0);
}

async function main() {
  const reps = Number(repsText);
  let bytes = 0;
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  for (let rep = 0; rep < reps; rep++) {
    for (const file of files) {
      const written = await one(file, rep === 0);
      if (rep === 0) bytes += written;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuBefore); // every thread of the process (libvips' too)
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ seconds, cpuSeconds, images: files.length * reps, bytes, peakRssMb }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
