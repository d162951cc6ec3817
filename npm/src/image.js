// Images: `RawImage` (transformers.js's class: decoded pixels plus the helpers that read and
// convert them), and turning whatever an image task is given into what the engine takes.
//
// Decoding: in browsers the platform decodes (`createImageBitmap` with `premultiplyAlpha: 'none'`
// and `colorSpaceConversion: 'none'`, so that the pixels are the file's own, as PIL reads them),
// then an OffscreenCanvas hands the pixels over; the wasm carries no image codecs for browsers.
// Node has no decoder: there the file's bytes go to the engine (`Media::Encoded`), which decodes
// them as PIL does.

import { IS_NODE, nodeModule } from './env.js';
import { engine, guarded, WebformersError } from './engine.js';

/** PIL's resampling filters by their numbers, as transformers.js maps them. */
const RESAMPLE = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

const has = (name) => typeof globalThis[name] !== 'undefined';
const isA = (x, name) => has(name) && x instanceof globalThis[name];
/** Where a 2-D canvas exists to draw on (browsers, workers). */
const canvasAvailable = () => has('OffscreenCanvas') || has('document');

function newCanvas(width, height) {
  if (has('OffscreenCanvas')) return new OffscreenCanvas(width, height);
  if (has('document')) return Object.assign(document.createElement('canvas'), { width, height });
  throw new WebformersError('no canvas is available here (Node has none): use RawImage.data', 'unsupported');
}

function context2d(canvas) {
  // willReadFrequently: a CPU-backed canvas, so that getImageData does not read back from a GPU.
  return canvas.getContext('2d', { willReadFrequently: true });
}

/** Decoded pixels, row-major, `channels` bytes a pixel (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA). */
export class RawImage {
  /**
   * @param {Uint8ClampedArray | Uint8Array} data
   * @param {number} width
   * @param {number} height
   * @param {1|2|3|4} channels
   */
  constructor(data, width, height, channels) {
    this.data = data;
    this.width = width;
    this.height = height;
    this.channels = channels;
  }

  /** `[width, height]`. */
  get size() {
    return [this.width, this.height];
  }

  /** A RawImage from a URL or path, a Blob, a canvas, an element, a bitmap, ImageData, or a RawImage (itself). */
  static async read(input) {
    if (input instanceof RawImage) return input;
    if (typeof input === 'string' || input instanceof URL) return RawImage.fromURL(input);
    if (isA(input, 'Blob')) return RawImage.fromBlob(input);
    if (isCanvas(input)) return RawImage.fromCanvas(input);
    if (isA(input, 'HTMLImageElement') || isA(input, 'ImageBitmap')) return toEngineImage(input, 'RawImage.read');
    if (isDrawable(input) || isA(input, 'ImageData')) return drawablePixels(input);
    throw new WebformersError(`RawImage.read takes a URL, a path, a Blob, a canvas, an image element, an ImageBitmap or ImageData, not ${describe(input)}`, 'input');
  }

  /** The pixels at a URL (http(s), relative, blob:, data:) or, in Node, a file path or file: URL. */
  static async fromURL(url) {
    return decode(await readBytes(url), `the image at ${shortUrl(String(url))}`);
  }

  /** The image a Blob (or File) holds. */
  static async fromBlob(blob) {
    if (!IS_NODE && has('createImageBitmap')) return decodeInBrowser(blob, blob.name ? `the file ${blob.name}` : 'the Blob');
    return decode(new Uint8Array(await blob.arrayBuffer()), blob.name ? `the file ${blob.name}` : 'the Blob');
  }

  /** The pixels of a canvas or OffscreenCanvas (RGBA). */
  static fromCanvas(canvas) {
    // A canvas with a WebGL or bitmaprenderer context has no 2-D context: drawn into one instead.
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (ctx) return new RawImage(ctx.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height, 4);
    return drawablePixels(canvas);
  }

  /** An image from a uint8 tensor of dims [C, H, W] ('CHW') or [H, W, C] ('HWC'). */
  static fromTensor(tensor, channel_format = 'CHW') {
    const { dims, data } = tensor;
    if (dims?.length !== 3) throw new WebformersError(`an image tensor has 3 dimensions, not ${dims?.length}`, 'input');
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
      throw new WebformersError(`an image tensor holds uint8 values, not ${tensor.type ?? data?.constructor?.name}`, 'input');
    }
    let [h, w, c] = dims;
    let pixels = data;
    if (channel_format === 'CHW') {
      [c, h, w] = dims;
      pixels = new Uint8ClampedArray(data.length);
      for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) pixels[i * c + ch] = data[ch * h * w + i];
    } else if (channel_format !== 'HWC') {
      throw new WebformersError(`unknown channel format '${channel_format}': 'CHW' or 'HWC'`, 'input');
    }
    if (!(c >= 1 && c <= 4)) throw new WebformersError(`an image has 1 to 4 channels, not ${c}`, 'input');
    return new RawImage(pixels, w, h, c);
  }

  /** To one gray channel (in place), with transformers.js's weights. */
  grayscale() {
    if (this.channels === 1) return this;
    if (this.channels < 3) return this._update(pick(this, [0]), 1);
    const out = new Uint8ClampedArray(this.width * this.height);
    const d = this.data;
    for (let i = 0, o = 0; o < out.length; i += this.channels) out[o++] = Math.round(0.2989 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]);
    return this._update(out, 1);
  }

  /** To RGB (in place): gray is repeated, alpha dropped (as PIL's convert('RGB')). */
  rgb() {
    if (this.channels === 3) return this;
    return this._update(pick(this, this.channels < 3 ? [0, 0, 0] : [0, 1, 2]), 3);
  }

  /** To RGBA (in place): opaque where there was no alpha. */
  rgba() {
    if (this.channels === 4) return this;
    const map = { 1: [0, 0, 0, -1], 2: [0, 0, 0, 1], 3: [0, 1, 2, -1] }[this.channels];
    return this._update(pick(this, map), 4);
  }

  /** To `channels` channels (in place). */
  convert(channels) {
    if (channels === this.channels) return this;
    if (channels === 1) return this.grayscale();
    if (channels === 3) return this.rgb();
    if (channels === 4) return this.rgba();
    throw new WebformersError(`cannot convert an image to ${channels} channels (1, 3 or 4)`, 'input');
  }

  clone() {
    return new RawImage(this.data.slice(), this.width, this.height, this.channels);
  }

  /**
   * A resized copy, computed as PIL's `Image.resize` computes it (the same filters, fixed-point
   * arithmetic and rounding, so the pixels are identical), in Node and browsers alike.
   * `resample`: PIL's number (0 nearest, 1 lanczos, 2 bilinear (default), 3 bicubic, 4 box,
   * 5 hamming) or its name. A null width or height keeps the aspect ratio.
   */
  async resize(width, height, { resample = 2 } = {}) {
    if (width == null && height == null) return this;
    if (width == null) width = Math.round((height / this.height) * this.width);
    if (height == null) height = Math.round((width / this.width) * this.height);
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
      throw new WebformersError(`resize takes positive integer sizes, not ${width}x${height}`, 'input');
    }
    if (width === this.width && height === this.height) return this;
    const filter = RESAMPLE[resample] ?? resample;
    const data = resamplePil(this, width, height, filter);
    return new RawImage(data, width, height, this.channels);
  }

  /** A canvas (OffscreenCanvas where there is one) with the image drawn on it. Browsers only. */
  toCanvas() {
    if (!canvasAvailable()) throw new WebformersError('toCanvas() needs a browser (Node has no canvas)', 'unsupported');
    const rgba = this.clone().rgba();
    const canvas = newCanvas(this.width, this.height);
    context2d(canvas).putImageData(new ImageData(new Uint8ClampedArray(rgba.data.buffer, rgba.data.byteOffset, rgba.data.length), this.width, this.height), 0, 0);
    return canvas;
  }

  /** A PNG (or `type`) Blob of the image. Browsers only. */
  async toBlob(type = 'image/png', quality = 1) {
    const canvas = this.toCanvas();
    if (canvas.convertToBlob) return canvas.convertToBlob({ type, quality });
    return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
  }

  _update(data, channels) {
    this.data = data;
    this.channels = channels;
    return this;
  }
}

/** The pixels with channels picked by `map` (-1: 255). */
function pick(image, map) {
  const n = image.width * image.height;
  const out = new Uint8ClampedArray(n * map.length);
  const { data, channels } = image;
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < map.length; c++) out[p * map.length + c] = map[c] < 0 ? 255 : data[p * channels + map[c]];
  }
  return out;
}

// ---- reading and decoding ------------------------------------------------------------------------

/** What a value is, in words, for errors. */
function describe(x) {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return `a ${x.constructor?.name ?? 'object'}`;
  if (typeof x === 'string') return `the string ${JSON.stringify(x.length > 60 ? `${x.slice(0, 57)}...` : x)}`;
  return `a ${typeof x}`;
}

/**
 * The bytes at `url`: fetched (http(s), data:, blob:, and in browsers relative URLs), or read from
 * disk in Node (a path or a file: URL). Errors name the URL and `what` it should be ('image',
 * 'audio').
 */
export async function readBytes(url, what = 'image') {
  const text = String(url);
  if (IS_NODE && !/^(https?|data|blob):/i.test(text)) {
    const { readFile } = await nodeModule('node:fs/promises');
    const { fileURLToPath } = await nodeModule('node:url');
    const file = /^file:/i.test(text) ? fileURLToPath(text) : text;
    try {
      const bytes = await readFile(file);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    } catch (e) {
      throw new WebformersError(`could not read the ${what} ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`, 'file', { cause: e });
    }
  }
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new WebformersError(`could not fetch the ${what} at ${shortUrl(text)}: ${e.message}`, 'network', { cause: e });
  }
  if (!response.ok) throw new WebformersError(`could not fetch the ${what} at ${shortUrl(text)}: HTTP ${response.status}`, response.status === 404 ? 'file' : 'network');
  return new Uint8Array(await response.arrayBuffer());
}

const shortUrl = (u) => (u.length > 100 ? `${u.slice(0, 97)}...` : u);

/** Pixels from encoded bytes: the platform's decoder in browsers, the engine's in Node. */
async function decode(bytes, what) {
  if (!IS_NODE && has('createImageBitmap')) return decodeInBrowser(new Blob([bytes]), what);
  const wasm = await engine();
  if (typeof wasm.decodeImage !== 'function') {
    throw new WebformersError('this build of webformers cannot decode images in Node (pass the file to a pipeline instead: it decodes it)', 'unsupported');
  }
  const { width, height, channels, data } = await guarded(() => wasm.decodeImage(bytes));
  return new RawImage(data, width, height, channels);
}

const BITMAP_OPTIONS = { premultiplyAlpha: 'none', colorSpaceConversion: 'none' };

/** Decodes a Blob with the browser: its own pixels (no color management, no premultiplied alpha). */
async function decodeInBrowser(blob, what) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, BITMAP_OPTIONS);
  } catch (e) {
    const type = blob.type ? ` (${blob.type})` : '';
    throw new WebformersError(`${what}${type} is not an image the browser can decode: ${e.message}`, 'input', { cause: e });
  }
  try {
    return bitmapPixels(bitmap);
  } finally {
    bitmap.close();
  }
}

/**
 * The pixels of a bitmap decoded with BITMAP_OPTIONS, exactly: through WebGL, which uploads and
 * reads back RGBA bytes as they are. A 2-D canvas stores premultiplied alpha, so it would change
 * the color of every pixel that is not opaque (and zero it where alpha is 0), unlike PIL; it is
 * the fallback where WebGL 2 is unavailable (or the image exceeds its texture size).
 */
function bitmapPixels(bitmap) {
  const gl = webgl();
  const { width, height } = bitmap;
  if (!gl || width > gl.maxSize || height > gl.maxSize) return drawablePixels(bitmap);
  const { ctx, texture, framebuffer } = gl;
  ctx.bindTexture(ctx.TEXTURE_2D, texture);
  ctx.pixelStorei(ctx.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
  ctx.pixelStorei(ctx.UNPACK_COLORSPACE_CONVERSION_WEBGL, ctx.NONE);
  ctx.pixelStorei(ctx.UNPACK_FLIP_Y_WEBGL, false);
  ctx.texImage2D(ctx.TEXTURE_2D, 0, ctx.RGBA8, width, height, 0, ctx.RGBA, ctx.UNSIGNED_BYTE, bitmap);
  ctx.bindFramebuffer(ctx.FRAMEBUFFER, framebuffer);
  ctx.framebufferTexture2D(ctx.FRAMEBUFFER, ctx.COLOR_ATTACHMENT0, ctx.TEXTURE_2D, texture, 0);
  const data = new Uint8ClampedArray(width * height * 4);
  ctx.pixelStorei(ctx.PACK_ALIGNMENT, 1);
  ctx.readPixels(0, 0, width, height, ctx.RGBA, ctx.UNSIGNED_BYTE, data);
  const failed = ctx.getError() !== ctx.NO_ERROR || ctx.checkFramebufferStatus(ctx.FRAMEBUFFER) !== ctx.FRAMEBUFFER_COMPLETE;
  // Free the texture's memory until the next image.
  ctx.texImage2D(ctx.TEXTURE_2D, 0, ctx.RGBA8, 1, 1, 0, ctx.RGBA, ctx.UNSIGNED_BYTE, null);
  if (failed) return drawablePixels(bitmap);
  return new RawImage(data, width, height, 4);
}

/** One WebGL 2 context for reading pixels (browsers limit how many live), or null. */
let gl = undefined;
function webgl() {
  if (gl !== undefined) return gl;
  gl = null;
  try {
    const ctx = has('OffscreenCanvas') ? new OffscreenCanvas(1, 1).getContext('webgl2') : null;
    if (ctx) {
      gl = { ctx, texture: ctx.createTexture(), framebuffer: ctx.createFramebuffer(), maxSize: ctx.getParameter(ctx.MAX_TEXTURE_SIZE) };
      ctx.canvas.addEventListener?.('webglcontextlost', () => (gl = undefined));
    }
  } catch {
    gl = null;
  }
  return gl;
}

const isCanvas = (x) => isA(x, 'HTMLCanvasElement') || isA(x, 'OffscreenCanvas');
/** What a 2-D canvas can draw: elements and bitmaps. */
const isDrawable = (x) =>
  isA(x, 'HTMLImageElement') || isA(x, 'SVGImageElement') || isA(x, 'HTMLVideoElement') || isA(x, 'ImageBitmap') || isA(x, 'VideoFrame') || isCanvas(x);

/** The RGBA pixels of something a canvas can draw, or of ImageData. */
function drawablePixels(source) {
  if (isA(source, 'ImageData')) return new RawImage(source.data, source.width, source.height, 4);
  const width = source.naturalWidth || source.videoWidth || source.displayWidth || source.width;
  const height = source.naturalHeight || source.videoHeight || source.displayHeight || source.height;
  if (!(width > 0 && height > 0)) throw new WebformersError(`the ${source.constructor.name} has no pixels yet (is it loaded?)`, 'input');
  const ctx = context2d(newCanvas(width, height));
  ctx.drawImage(source, 0, 0, width, height);
  return new RawImage(ctx.getImageData(0, 0, width, height).data, width, height, 4);
}

/**
 * An image element's pixels: decoded again from its source with the bitmap options above (an
 * element drawn as it is would be color-managed and premultiplied), once it has loaded.
 */
async function imageElementPixels(img) {
  if (!img.complete || !img.naturalWidth) {
    try {
      await img.decode();
    } catch (e) {
      throw new WebformersError(`the image element (${shortUrl(img.currentSrc || img.src || 'no src')}) could not be decoded: ${e.message}`, 'input', { cause: e });
    }
  }
  const bitmap = await createImageBitmap(img, BITMAP_OPTIONS);
  try {
    return bitmapPixels(bitmap);
  } finally {
    bitmap.close();
  }
}

// ---- a call's images as the engine takes them --------------------------------------------------

/**
 * One image input as the engine takes it: a RawImage (pixels) or, in Node, a file's bytes
 * (`Uint8Array`: the engine decodes). `task` names the pipeline in errors.
 */
export async function toEngineImage(x, task) {
  if (x instanceof RawImage) return x;
  if (typeof x === 'string' || x instanceof URL) {
    const text = String(x).trim();
    if (!text) throw new WebformersError(`${task} takes images: the empty string is no image URL or path`, 'input');
    // Node: the engine decodes the file's bytes (no platform decoder); browsers decode here.
    return IS_NODE ? readBytes(text) : RawImage.fromURL(text);
  }
  if (isA(x, 'Blob')) return IS_NODE ? new Uint8Array(await x.arrayBuffer()) : RawImage.fromBlob(x);
  if (isA(x, 'HTMLImageElement')) return imageElementPixels(x);
  if (isA(x, 'ImageBitmap')) return bitmapPixels(x);
  if (isCanvas(x)) return RawImage.fromCanvas(x);
  if (isDrawable(x) || isA(x, 'ImageData')) return drawablePixels(x);
  if (x && typeof x === 'object' && 'width' in x && 'height' in x && 'channels' in x && ArrayBuffer.isView(x.data)) {
    // A RawImage from another copy of the package, or one that came through postMessage.
    return new RawImage(x.data, x.width, x.height, x.channels);
  }
  throw new WebformersError(
    `${task} takes an image (a URL or path, a Blob, an image element, an ImageBitmap, ImageData, a canvas or a RawImage) or an array of them, not ${describe(x)}`,
    'input',
  );
}

/**
 * The first argument of an image task as the engine takes it: `{value, media}`, each image
 * replaced in `value` by `{$media: i}`, `media[i]` being its pixels (`{width, height, channels,
 * data}`) or, in Node, its file's bytes.
 */
export async function imageInput(input, task) {
  const many = Array.isArray(input);
  if (many && input.length === 0) throw new WebformersError(`${task} was given an empty array of images`, 'input');
  const items = await Promise.all((many ? input : [input]).map((x) => toEngineImage(x, task)));
  const media = items.map((m) => (m instanceof RawImage ? { width: m.width, height: m.height, channels: m.channels, data: m.data } : m));
  const refs = media.map((_, i) => ({ $media: i }));
  return { value: many ? refs : refs[0], media };
}

/** The input kinds whose first argument is images. */
export const IMAGE_KINDS = new Set(['image', 'image_with_labels']);

/**
 * An image input made fit for postMessage to a worker pipeline (worker-client.js): relative URLs
 * made absolute (the worker's base differs), elements and canvases turned into pixels here (they
 * cannot be sent), RawImages into plain pixels. Returns `{input, transfer}`: the buffers of
 * pixels made here, which can be moved instead of copied.
 */
export async function imageInputForWorker(input, task) {
  const transfer = [];
  const one = async (x) => {
    if (typeof x === 'string') return has('location') ? new URL(x, location.href).href : x;
    if (x instanceof URL || isA(x, 'Blob') || isA(x, 'ImageBitmap') || isA(x, 'ImageData')) return x instanceof URL ? x.href : x;
    if (x instanceof RawImage) return { width: x.width, height: x.height, channels: x.channels, data: x.data };
    const image = await toEngineImage(x, task);
    if (image instanceof RawImage) {
      transfer.push(image.data.buffer);
      return { width: image.width, height: image.height, channels: image.channels, data: image.data };
    }
    return image;
  };
  const converted = Array.isArray(input) ? await Promise.all(input.map(one)) : await one(input);
  return { input: converted, transfer };
}

// ---- PIL's resize ----------------------------------------------------------------------------------

/** PIL's filters (Resample.c): support and kernel. */
const FILTERS = {
  box: [0.5, (x) => (x > -0.5 && x <= 0.5 ? 1 : 0)],
  bilinear: [1, (x) => ((x = Math.abs(x)) < 1 ? 1 - x : 0)],
  // 0.54f and 0.46f: single-precision constants in Pillow's C.
  hamming: [1, (x) => ((x = Math.abs(x)) === 0 ? 1 : x >= 1 ? 0 : (Math.sin(Math.PI * x) / (Math.PI * x)) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(Math.PI * x)))],
  bicubic: [
    2,
    (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  ],
  lanczos: [3, (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0)],
};
function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

/** Per output pixel: the first input pixel, the count, and fixed-point weights (PIL's precompute_coeffs). */
function coefficients(inSize, outSize, [support, filter]) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  support *= filterscale;
  const out = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    // (int)(v + 0.5) in C truncates toward zero.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = filter((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    const fixed = new Int32Array(xmax);
    for (let x = 0; x < xmax; x++) {
      const w = ww === 0 ? k[x] : k[x] / ww;
      fixed[x] = Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE);
    }
    out.push({ min: xmin, weights: fixed });
  }
  return out;
}

/** PIL's clip8 of a fixed-point sum. */
const clip8 = (v) => (v >= ONE * 256 ? 255 : v <= 0 ? 0 : Math.floor(v / ONE));

/** One pass along x (`horizontal`) or y of PIL's separable resampling, 8 bits a channel. */
function pass(src, w, h, c, outW, outH, coeffs, horizontal) {
  const out = new Uint8ClampedArray(outW * outH * c);
  const half = ONE / 2;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const { min, weights } = coeffs[horizontal ? x : y];
      for (let ch = 0; ch < c; ch++) {
        let ss = half;
        for (let i = 0; i < weights.length; i++) {
          const at = horizontal ? (y * w + min + i) * c + ch : ((min + i) * w + x) * c + ch;
          ss += src[at] * weights[i];
        }
        out[(y * outW + x) * c + ch] = clip8(ss);
      }
    }
  }
  return out;
}

/**
 * PIL's `Image.resize`: nearest as its affine sampling; the other filters as its two separable
 * passes (horizontal, then vertical), each rounded to 8 bits; images with alpha resized
 * premultiplied, as PIL does ('RGBA' → 'RGBa' and back).
 */
function resamplePil(image, outW, outH, filter) {
  const { width: w, height: h, channels: c, data } = image;
  if (filter === 'nearest') {
    // PIL's ImagingScaleAffine: source positions accumulated by repeated addition, truncated.
    const positions = (inSize, outSize) => {
      const step = inSize / outSize;
      const at = new Int32Array(outSize);
      let v = step * 0.5;
      for (let i = 0; i < outSize; i++, v += step) at[i] = Math.min(inSize - 1, Math.trunc(v));
      return at;
    };
    const xs = positions(w, outW);
    const ys = positions(h, outH);
    const out = new Uint8ClampedArray(outW * outH * c);
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        for (let ch = 0; ch < c; ch++) out[(y * outW + x) * c + ch] = data[(ys[y] * w + xs[x]) * c + ch];
      }
    }
    return out;
  }
  const kernel = FILTERS[filter];
  if (!kernel) throw new WebformersError(`unknown resampling filter '${filter}': nearest, lanczos, bilinear, bicubic, box or hamming`, 'input');
  const alpha = c === 2 || c === 4;
  let src = alpha ? premultiply(data, c) : data;
  let sw = w;
  if (outW !== w) {
    src = pass(src, w, h, c, outW, h, coefficients(w, outW, kernel), true);
    sw = outW;
  }
  if (outH !== h) src = pass(src, sw, h, c, outW, outH, coefficients(h, outH, kernel), false);
  return alpha ? unpremultiply(src, c) : src === data ? new Uint8ClampedArray(data) : src;
}

/** PIL's RGBA → RGBa: each color times alpha / 255, rounded as its MULDIV255. */
function premultiply(data, c) {
  const out = new Uint8ClampedArray(data);
  for (let i = 0; i < out.length; i += c) {
    const a = data[i + c - 1];
    for (let ch = 0; ch < c - 1; ch++) {
      const t = data[i + ch] * a + 128;
      out[i + ch] = ((t >> 8) + t) >> 8;
    }
  }
  return out;
}

/** PIL's RGBa → RGBA: color * 255 / alpha, truncated and clipped; alpha 0 or 255 left as is. */
function unpremultiply(data, c) {
  for (let i = 0; i < data.length; i += c) {
    const a = data[i + c - 1];
    if (a === 0 || a === 255) continue;
    for (let ch = 0; ch < c - 1; ch++) data[i + ch] = Math.min(255, Math.floor((data[i + ch] * 255) / a));
  }
  return data;
}
