// Builds MapLibre glyph PBFs (signed distance fields, 256 code points a file) from the Noto Sans
// font shipped by the npm package @fontsource/noto-sans, parsed with opentype.js: run by
// `npm ci` (package.json "postinstall"), so the map screen draws Latin letters, digits and
// punctuation with glyphs served by the app itself. Chinese ideographs are drawn by the browser
// from the system's CJK font (MapLibre's localIdeographFontFamily); nothing downloads at run time.
// MapLibre draws locally only ideographs, hangul and kana, so Chinese punctuation (、。「」《》 in
// U+3000-303F, （）！，：；？ in U+FF00-FFEF) comes from glyphs built here out of a CJK font on
// the machine: $PINGAN_CJK_FONT, else Debian's fonts-wqy-microhei, which scripts/system-deps.sh and
// the Dockerfile install before `npm ci` (a TrueType collection: its first font is taken).
//
//   node scripts/build-glyphs.mjs [OUT_DIR]     (default: node_modules/pingan-glyphs)
//
// The format is MapLibre's glyphs.proto: glyphs { stacks { name, range, glyphs { id, bitmap,
// width, height, left, top, advance } } }; each bitmap is the glyph's box plus a 3-pixel border,
// one byte a pixel, 24 px em, edge at 192 (radius 8, cutoff 0.25), as fontnik makes them.
import fs from "node:fs";
import path from "node:path";
import {createRequire} from "node:module";
import {fileURLToPath} from "node:url";

const require = createRequire(import.meta.url);
const opentype = require("opentype.js");

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.resolve(process.argv[2] || path.join(ROOT, "node_modules", "pingan-glyphs"));
const STACK = "Noto Sans Regular";
const FILES = ["latin", "latin-ext", "greek", "cyrillic", "vietnamese"].map(
  (s) => path.join(ROOT, "node_modules", "@fontsource", "noto-sans", "files", `noto-sans-${s}-400-normal.woff`));
const CJK_FONTS = [process.env.PINGAN_CJK_FONT, "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
  "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"].filter(Boolean);
// What the CJK font is asked for: punctuation blocks, less what MapLibre draws locally.
const CJK_BLOCKS = [[0x3000, 0x303f], [0xff00, 0xffef]];
const LOCAL = /\p{Ideo}|\p{sc=Hang}|\p{sc=Hira}|\p{sc=Kana}/u;
const wantedFromCjk = (cp) =>
  CJK_BLOCKS.some(([a, b]) => cp >= a && cp <= b) && !LOCAL.test(String.fromCodePoint(cp));
const SIZE = 24, BUFFER = 3, RADIUS = 8, CUTOFF = 0.25;
// Where MapLibre puts the top of a glyph: its local CJK glyphs use ascent - 27.5 (glyph_manager.ts),
// so Latin and Chinese in one label share a baseline.
const TOP_ADJUST = 27;

function flatten(commands) {
  // Path commands (pixels, y down) to closed polylines.
  const rings = [];
  let ring = null, x = 0, y = 0;
  const steps = 8;
  for (const c of commands) {
    if (c.type === "M") { if (ring && ring.length > 2) rings.push(ring); ring = [[c.x, c.y]]; x = c.x; y = c.y; }
    else if (c.type === "L") { ring.push([c.x, c.y]); x = c.x; y = c.y; }
    else if (c.type === "Q") {
      for (let i = 1; i <= steps; i++) {
        const t = i / steps, u = 1 - t;
        ring.push([u * u * x + 2 * u * t * c.x1 + t * t * c.x, u * u * y + 2 * u * t * c.y1 + t * t * c.y]);
      }
      x = c.x; y = c.y;
    } else if (c.type === "C") {
      for (let i = 1; i <= steps; i++) {
        const t = i / steps, u = 1 - t;
        ring.push([u * u * u * x + 3 * u * u * t * c.x1 + 3 * u * t * t * c.x2 + t * t * t * c.x,
                   u * u * u * y + 3 * u * u * t * c.y1 + 3 * u * t * t * c.y2 + t * t * t * c.y]);
      }
      x = c.x; y = c.y;
    } else if (c.type === "Z") { if (ring && ring.length > 2) rings.push(ring); ring = null; }
  }
  if (ring && ring.length > 2) rings.push(ring);
  return rings;
}

function segmentDistance2(px, py, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay;
  const l2 = dx * dx + dy * dy;
  let t = l2 ? ((px - ax) * dx + (py - ay) * dy) / l2 : 0;
  t = Math.max(0, Math.min(1, t));
  const qx = ax + t * dx - px, qy = ay + t * dy - py;
  return qx * qx + qy * qy;
}

function winding(px, py, rings) {
  // non-zero winding number (TrueType's fill rule)
  let w = 0;
  for (const r of rings) {
    for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
      const [ax, ay] = r[j], [bx, by] = r[i];
      if (ay <= py) { if (by > py && (bx - ax) * (py - ay) - (px - ax) * (by - ay) > 0) w++; }
      else if (by <= py && (bx - ax) * (py - ay) - (px - ax) * (by - ay) < 0) w--;
    }
  }
  return w;
}

function renderGlyph(font, glyph, id) {
  const scale = SIZE / font.unitsPerEm;
  const advance = Math.round((glyph.advanceWidth || 0) * scale);
  const rings = flatten(glyph.getPath(0, 0, SIZE).commands);
  if (!rings.length) return {id, bitmap: new Uint8Array(0), width: 0, height: 0, left: 0, top: -TOP_ADJUST, advance};
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const r of rings) for (const [x, y] of r) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  const left = Math.floor(x0), topY = Math.floor(y0);
  const width = Math.max(1, Math.ceil(x1) - left), height = Math.max(1, Math.ceil(y1) - topY);
  const W = width + 2 * BUFFER, H = height + 2 * BUFFER;
  const bitmap = new Uint8Array(W * H);
  for (let j = 0; j < H; j++) {
    const py = topY - BUFFER + j + 0.5;
    for (let i = 0; i < W; i++) {
      const px = left - BUFFER + i + 0.5;
      let d2 = Infinity;
      for (const r of rings) {
        for (let k = 0, m = r.length - 1; k < r.length; m = k++) {
          const d = segmentDistance2(px, py, r[m][0], r[m][1], r[k][0], r[k][1]);
          if (d < d2) d2 = d;
        }
      }
      const d = Math.sqrt(d2) * (winding(px, py, rings) !== 0 ? -1 : 1);
      bitmap[j * W + i] = Math.max(0, Math.min(255, Math.round(255 - 255 * (d / RADIUS + CUTOFF))));
    }
  }
  return {id, bitmap, width, height, left, top: -topY - TOP_ADJUST, advance};
}

// -- protobuf writing (just what glyphs.proto needs) ------------------------------------------
class Writer {
  constructor() { this.bytes = []; }
  varint(v) { v = Math.floor(v); while (v > 127) { this.bytes.push((v & 127) | 128); v = Math.floor(v / 128); } this.bytes.push(v); }
  key(field, type) { this.varint(field * 8 + type); }
  uint(field, v) { this.key(field, 0); this.varint(v); }
  sint(field, v) { this.key(field, 0); this.varint(v < 0 ? -2 * v - 1 : 2 * v); }
  bytesField(field, data) { this.key(field, 2); this.varint(data.length); for (const b of data) this.bytes.push(b); }
  string(field, s) { this.bytesField(field, new TextEncoder().encode(s)); }
  message(field, w) { this.bytesField(field, w.bytes); }
}

export function encodeRange(name, start, glyphs) {
  const stack = new Writer();
  stack.string(1, name);
  stack.string(2, `${start}-${start + 255}`);
  for (const g of glyphs) {
    const w = new Writer();
    w.uint(1, g.id);
    if (g.bitmap.length) w.bytesField(2, g.bitmap);
    w.uint(3, g.width); w.uint(4, g.height); w.sint(5, g.left); w.sint(6, g.top); w.uint(7, g.advance);
    stack.message(3, w);
  }
  const top = new Writer();
  top.message(1, stack);
  return Uint8Array.from(top.bytes);
}

// The font at ``index`` of a TrueType/OpenType collection (.ttc) as a font file of its own: the
// collection's table records point into the whole file, so the tables are copied after a new
// directory. Anything else is returned as it is.
export function fromCollection(bytes, index = 0) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== 0x74746366) return bytes;  // not 'ttcf'
  if (index >= view.getUint32(8)) throw new Error(`font ${index} not in the collection`);
  const at = view.getUint32(12 + 4 * index);
  const n = view.getUint16(at + 4);
  const tables = [];
  for (let i = 0; i < n; i++) {
    const r = at + 12 + 16 * i;
    tables.push({offset: view.getUint32(r + 8), length: view.getUint32(r + 12)});
  }
  let size = 12 + 16 * n;
  for (const t of tables) size += (t.length + 3) & ~3;
  const out = new Uint8Array(size);
  const w = new DataView(out.buffer);
  out.set(bytes.subarray(at, at + 12 + 16 * n), 0);
  let pos = 12 + 16 * n;
  tables.forEach((t, i) => {
    out.set(bytes.subarray(t.offset, t.offset + t.length), pos);
    w.setUint32(12 + 16 * i + 8, pos);
    pos += (t.length + 3) & ~3;
  });
  return out;
}

function parse(bytes) {
  return opentype.parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function main() {
  const fonts = FILES.filter((f) => fs.existsSync(f)).map((f) => parse(fs.readFileSync(f)));
  if (!fonts.length) {
    console.error(`build-glyphs: no font found (${FILES[0]}); run npm ci`);
    process.exit(1);
  }
  const cjkFile = CJK_FONTS.find((f) => fs.existsSync(f));
  const cjk = cjkFile ? parse(fromCollection(fs.readFileSync(cjkFile))) : null;
  if (!cjk) {
    console.warn(`build-glyphs: no CJK font (${CJK_FONTS.join(", ")}): Chinese punctuation in labels `
      + "will not be drawn; install fonts-wqy-microhei (scripts/system-deps.sh) and run npm ci again");
  }
  const byRange = new Map();
  let cjkGlyphs = 0;
  for (let cp = 32; cp < 65536; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    // Noto Sans first; Chinese punctuation it lacks from the CJK font
    for (const font of cjk && wantedFromCjk(cp) ? [...fonts, cjk] : fonts) {
      const index = font.charToGlyphIndex(String.fromCodePoint(cp));
      if (!index) continue;
      const g = renderGlyph(font, font.glyphs.get(index), cp);
      const start = cp - (cp % 256);
      if (!byRange.has(start)) byRange.set(start, []);
      byRange.get(start).push(g);
      if (font === cjk) cjkGlyphs++;
      break;
    }
  }
  const dir = path.join(OUT, STACK);
  fs.mkdirSync(dir, {recursive: true});
  const ranges = [];
  for (const [start, glyphs] of [...byRange].sort((a, b) => a[0] - b[0])) {
    fs.writeFileSync(path.join(dir, `${start}-${start + 255}.pbf`), encodeRange(STACK, start, glyphs));
    ranges.push(start);
  }
  fs.writeFileSync(path.join(OUT, "index.json"), JSON.stringify({stacks: {[STACK]: ranges},
    source: "@fontsource/noto-sans", punctuation: cjkFile ? {font: cjkFile, glyphs: cjkGlyphs} : null}));
  console.log(`build-glyphs: ${STACK}: ${ranges.length} ranges, ${[...byRange.values()].reduce((n, g) => n + g.length, 0)} glyphs`
    + ` (${cjkGlyphs} Chinese punctuation from ${cjkFile || "no CJK font"}) -> ${OUT}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
