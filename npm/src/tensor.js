// Tensor: what pipelines return (embeddings, features), with transformers.js's Tensor surface so
// that code written for it runs unchanged: `dims`, `type`, `data`, `size`, indexing
// (`tensor[0]`), iteration, `item`, `tolist`, `slice`, `permute` / `transpose`, `view`,
// `squeeze` / `unsqueeze`, `flatten`, `sum` / `mean` / `norm` / `normalize`, `min` / `max`,
// elementwise arithmetic with a number, `to`, and the free functions `cat`, `stack`,
// `mean_pooling`, `quantize_embeddings`, `cos_sim`. Everything runs on the data in JavaScript
// memory; npm/test/tensor.test.mjs checks each against transformers.js 4.3.1's results.

/** The typed array that holds each element type (float16 without Float16Array: raw bits in Uint16Array). */
const ARRAY_OF = {
  float32: Float32Array,
  float64: Float64Array,
  float16: globalThis.Float16Array ?? Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};
const BIGINT_TYPES = new Set(['int64', 'uint64']);
const FLOAT_TYPES = new Set(['float16', 'float32', 'float64']);

const product = (dims) => dims.reduce((a, b) => a * b, 1);

/** Row-major strides of `dims`. */
function stridesOf(dims) {
  const strides = new Array(dims.length);
  for (let i = dims.length - 1, s = 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
  return strides;
}

/** `index` of a dimension of `size`, negative counting from the end; out of range is an Error. */
function axisIndex(index, size, what = 'index') {
  if (!Number.isInteger(index)) throw new TypeError(`${what} ${index} is not an integer`);
  const i = index < 0 ? index + size : index;
  if (i < 0 || i >= size) {
    throw new RangeError(`${what} ${index} is out of bounds for a dimension of size ${size}`);
  }
  return i;
}

/** `dim` of a tensor of `rank` dimensions, negative counting from the end. */
const dimIndex = (dim, rank) => axisIndex(dim, rank, 'dimension');

/** 16-bit float bits to a number (for float16 data held as Uint16Array). */
function halfToNumber(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** A number's value as an element of `type` holds it (BigInt for 64-bit integers). */
function toElement(type, value) {
  if (BIGINT_TYPES.has(type)) return typeof value === 'bigint' ? value : BigInt(Math.trunc(Number(value)));
  return typeof value === 'bigint' ? Number(value) : value;
}

export class Tensor {
  /**
   * `new Tensor(type, data, dims)`: `data` a typed array of the type (or a plain array, copied
   * into one), row-major, `dims` its shape.
   */
  constructor(type, data, dims) {
    const Array_ = ARRAY_OF[type];
    if (!Array_) throw new TypeError(`Tensor: unknown type ${JSON.stringify(type)} (one of ${Object.keys(ARRAY_OF).join(', ')})`);
    if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new TypeError(`Tensor: dims must be an array of sizes, not ${JSON.stringify(dims)}`);
    }
    if (Array.isArray(data)) data = Array_.from(data, (v) => toElement(type, v));
    if (!ArrayBuffer.isView(data)) throw new TypeError('Tensor: data must be a typed array or an array');
    if (data.length !== product(dims)) {
      throw new RangeError(`Tensor: ${data.length} elements do not fill dims [${dims}] (${product(dims)})`);
    }
    this.type = type;
    this.data = data;
    this.dims = dims;
    // transformers.js indexes tensors like arrays: tensor[0] is the first row.
    return new Proxy(this, {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^-?\d+$/.test(key)) return target._row(Number(key));
        return Reflect.get(target, key, receiver);
      },
    });
  }

  /** The number of elements. */
  get size() {
    return this.data.length;
  }

  /** Row `index` of the first dimension: a tensor of the other dimensions sharing this one's data. */
  _row(index) {
    const [rows, ...rest] = this.dims;
    if (rows === undefined) throw new RangeError('Tensor: a scalar has no rows to index');
    const i = axisIndex(index, rows);
    const n = product(rest);
    return new Tensor(this.type, this.data.subarray(i * n, (i + 1) * n), rest);
  }

  /** The rows of the first dimension as tensors, or the elements of a one-dimensional tensor. */
  *[Symbol.iterator]() {
    if (this.dims.length <= 1) {
      yield* this.data;
      return;
    }
    for (let i = 0; i < this.dims[0]; i++) yield this._row(i);
  }

  /** The value of a one-element tensor. */
  item() {
    if (this.data.length !== 1) throw new Error(`Tensor.item: a tensor of ${this.data.length} elements has no single value`);
    return this.data[0];
  }

  /** Nested arrays, one level per dimension. */
  tolist() {
    const { data, dims } = this;
    if (dims.length === 0) return data[0];
    const build = (offset, d) => {
      const n = dims[d];
      if (d === dims.length - 1) return Array.from(data.subarray(offset, offset + n));
      const stride = product(dims.slice(d + 1));
      return Array.from({ length: n }, (_, i) => build(offset + i * stride, d + 1));
    };
    return build(0, 0);
  }

  /** A copy with its own data. */
  clone() {
    return new Tensor(this.type, this.data.slice(), this.dims.slice());
  }

  /** Nothing to free: the data lives in JavaScript memory. Kept for transformers.js code. */
  dispose() {}

  /**
   * Per dimension: a number (that index; the dimension goes), `[start, end]` (end exclusive,
   * negatives from the end, `null` for an open end), or null / missing (all of it).
   */
  slice(...slices) {
    const ranges = this.dims.map((size, d) => {
      const s = slices[d];
      if (s === null || s === undefined) return { start: 0, end: size, keep: true };
      if (typeof s === 'number') {
        const i = axisIndex(s, size);
        return { start: i, end: i + 1, keep: false };
      }
      if (Array.isArray(s) && s.length === 2) {
        // as Python's slices: ends past the dimension are clamped to it
        const bound = (v, open) => (v === null ? open : Math.min(Math.max(v < 0 ? v + size : v, 0), size));
        const [start, end] = [bound(s[0], 0), bound(s[1], size)];
        if (start > end) throw new RangeError(`Tensor.slice: [${s}] starts after it ends`);
        return { start, end, keep: true };
      }
      throw new TypeError(`Tensor.slice: ${JSON.stringify(s)} is not a number, [start, end] or null`);
    });
    const shape = ranges.map((r) => r.end - r.start);
    const out = new ARRAY_OF[this.type](product(shape));
    const strides = stridesOf(this.dims);
    const outStrides = stridesOf(shape);
    for (let i = 0; i < out.length; i++) {
      let source = 0;
      for (let d = 0; d < shape.length; d++) source += (Math.floor(i / outStrides[d]) % shape[d] + ranges[d].start) * strides[d];
      out[i] = this.data[source];
    }
    return new Tensor(this.type, out, shape.filter((_, d) => ranges[d].keep));
  }

  /** The dimensions reordered: output dimension i is input dimension `order[i]`. */
  permute(...order) {
    const rank = this.dims.length;
    const axes = order.map((d) => dimIndex(d, rank));
    if (axes.length !== rank || new Set(axes).size !== rank) {
      throw new RangeError(`Tensor.permute: [${order}] is not an order of ${rank} dimensions`);
    }
    const shape = axes.map((a) => this.dims[a]);
    const strides = stridesOf(this.dims);
    const outStrides = stridesOf(shape);
    const out = new ARRAY_OF[this.type](this.data.length);
    for (let i = 0; i < out.length; i++) {
      let source = 0;
      for (let d = 0; d < rank; d++) source += (Math.floor(i / outStrides[d]) % shape[d]) * strides[axes[d]];
      out[i] = this.data[source];
    }
    return new Tensor(this.type, out, shape);
  }

  /** As transformers.js: the same as `permute`. */
  transpose(...order) {
    return this.permute(...order);
  }

  /** The same data in another shape; one size may be -1 (inferred). Shares the data. */
  view(...dims) {
    const unknown = dims.filter((d) => d === -1).length;
    if (unknown > 1) throw new RangeError('Tensor.view: only one dimension can be -1');
    const known = product(dims.filter((d) => d !== -1));
    const shape = dims.map((d) => (d === -1 ? this.data.length / known : d));
    if (!shape.every(Number.isInteger) || product(shape) !== this.data.length) {
      throw new RangeError(`Tensor.view: [${dims}] does not hold the ${this.data.length} elements of [${this.dims}]`);
    }
    return new Tensor(this.type, this.data, shape);
  }

  /** Without the dimensions of size 1 (all of them, or those named). Shares the data. */
  squeeze(dim = null) {
    const rank = this.dims.length;
    const named = dim === null ? null : new Set((Array.isArray(dim) ? dim : [dim]).map((d) => dimIndex(d, rank)));
    return new Tensor(this.type, this.data, this.dims.filter((size, d) => size !== 1 || (named !== null && !named.has(d))));
  }

  /** With a dimension of size 1 inserted at `dim` (negative: from the end). Shares the data. */
  unsqueeze(dim) {
    const at = axisIndex(dim < 0 ? dim + this.dims.length + 1 : dim, this.dims.length + 1, 'dimension');
    const shape = this.dims.slice();
    shape.splice(at, 0, 1);
    return new Tensor(this.type, this.data, shape);
  }

  /** Dimensions `start_dim..=end_dim` merged into one. */
  flatten(start_dim = 0, end_dim = -1) {
    const rank = this.dims.length;
    const [start, end] = [dimIndex(start_dim, rank), dimIndex(end_dim, rank)];
    const shape = [...this.dims.slice(0, start), product(this.dims.slice(start, end + 1)), ...this.dims.slice(end + 1)];
    return new Tensor(this.type, this.data.slice(), shape);
  }

  /**
   * `step(accumulator, value)` over dimension `dim` (null: every element, giving a scalar),
   * accumulated in doubles, the result in this tensor's type.
   */
  _reduce(dim, keepdim, initial, step, finish = (v) => v) {
    if (dim === null || dim === undefined) {
      let acc = initial;
      for (const v of this.data) acc = step(acc, v);
      return new Tensor(this.type, [finish(acc, this.data.length)], keepdim ? this.dims.map(() => 1) : []);
    }
    const d = dimIndex(dim, this.dims.length);
    const outer = product(this.dims.slice(0, d));
    const size = this.dims[d];
    const inner = product(this.dims.slice(d + 1));
    const out = new ARRAY_OF[this.type](outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let acc = initial;
        for (let k = 0; k < size; k++) acc = step(acc, this.data[(o * size + k) * inner + i]);
        out[o * inner + i] = toElement(this.type, finish(acc, size));
      }
    }
    const shape = this.dims.slice();
    if (keepdim) shape[d] = 1;
    else shape.splice(d, 1);
    return new Tensor(this.type, out, shape);
  }

  _floatOnly(what) {
    if (!FLOAT_TYPES.has(this.type)) throw new TypeError(`Tensor.${what} needs a floating-point tensor, not ${this.type}`);
  }

  /** The sum over `dim` (null: all elements). */
  sum(dim = null, keepdim = false) {
    const zero = BIGINT_TYPES.has(this.type) ? 0n : 0;
    return this._reduce(dim, keepdim, zero, (a, v) => a + v);
  }

  /** The mean over `dim` (null: all elements). */
  mean(dim = null, keepdim = false) {
    this._floatOnly('mean');
    return this._reduce(dim, keepdim, 0, (a, v) => a + v, (a, n) => a / n);
  }

  /** The p-norm over `dim` (null: all elements); 'fro' is p = 2. */
  norm(p = 'fro', dim = null, keepdim = false) {
    if (p === 'fro') p = 2;
    if (typeof p !== 'number') throw new TypeError(`Tensor.norm: unsupported norm ${JSON.stringify(p)}`);
    this._floatOnly('norm');
    return this._reduce(dim, keepdim, 0, (a, v) => a + Math.abs(v) ** p, (a) => a ** (1 / p));
  }

  /** Divided by its p-norm over `dim` (default: each row of a [rows, n] tensor). */
  normalize(p = 2.0, dim = 1) {
    const d = dimIndex(dim, this.dims.length);
    const norms = this.norm(p, d, true).data;
    const inner = product(this.dims.slice(d + 1));
    const size = this.dims[d];
    const out = this.data.slice();
    for (let i = 0; i < out.length; i++) {
      const o = Math.floor(i / (size * inner));
      out[i] /= norms[o * inner + (i % inner)];
    }
    return new Tensor(this.type, out, this.dims.slice());
  }

  /** The smallest element over `dim` (null: all elements). */
  min(dim = null, keepdim = false) {
    return this._reduce(dim, keepdim, Infinity, (a, v) => (v < a ? v : a));
  }

  /** The largest element over `dim` (null: all elements). */
  max(dim = null, keepdim = false) {
    return this._reduce(dim, keepdim, -Infinity, (a, v) => (v > a ? v : a));
  }

  /** `fn(value, index)` of every element, in this tensor's type. */
  map(fn) {
    const out = this.data.slice();
    for (let i = 0; i < out.length; i++) out[i] = fn(out[i], i, out);
    return new Tensor(this.type, out, this.dims.slice());
  }

  mul(value) {
    return this.map((v) => v * value);
  }

  div(value) {
    return this.map((v) => v / value);
  }

  add(value) {
    return this.map((v) => v + value);
  }

  sub(value) {
    return this.map((v) => v - value);
  }

  /** A copy of another element type (this tensor itself when it is one already). */
  to(type) {
    if (type === this.type) return this;
    const Array_ = ARRAY_OF[type];
    if (!Array_) throw new TypeError(`Tensor.to: unknown type ${JSON.stringify(type)}`);
    const halfBits = this.type === 'float16' && this.data instanceof Uint16Array;
    const read = halfBits ? halfToNumber : (v) => v;
    const convert = BIGINT_TYPES.has(type)
      ? (v) => BigInt(FLOAT_TYPES.has(this.type) ? Math.floor(read(v)) : v)
      : (v) => Number(read(v));
    return new Tensor(type, Array_.from(this.data, convert), this.dims.slice());
  }
}

/** `tensors` joined along `dim`; every other dimension must agree. */
export function cat(tensors, dim = 0) {
  if (!tensors.length) throw new RangeError('cat: no tensors');
  const first = tensors[0];
  const d = dimIndex(dim, first.dims.length);
  for (const t of tensors) {
    if (t.dims.length !== first.dims.length || t.dims.some((s, i) => i !== d && s !== first.dims[i])) {
      throw new RangeError(`cat: [${t.dims}] does not match [${first.dims}] outside dimension ${d}`);
    }
  }
  const shape = first.dims.slice();
  shape[d] = tensors.reduce((n, t) => n + t.dims[d], 0);
  const outer = product(shape.slice(0, d));
  const inner = product(shape.slice(d + 1));
  const out = new ARRAY_OF[first.type](product(shape));
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of tensors) {
      const n = t.dims[d] * inner;
      out.set(t.data.subarray(o * n, (o + 1) * n), at);
      at += n;
    }
  }
  return new Tensor(first.type, out, shape);
}

/** Tensors of one shape stacked along a new dimension `dim`. */
export function stack(tensors, dim = 0) {
  return cat(
    tensors.map((t) => t.unsqueeze(dim)),
    dim,
  );
}

/**
 * The mean of [batch, tokens, width] hidden states over the tokens that `attention_mask`
 * [batch, tokens] marks: [batch, width].
 */
export function mean_pooling(last_hidden_state, attention_mask) {
  const [batch, tokens, width] = last_hidden_state.dims;
  if (last_hidden_state.dims.length !== 3 || attention_mask.dims[0] !== batch || attention_mask.dims[1] !== tokens) {
    throw new RangeError(`mean_pooling: hidden states [${last_hidden_state.dims}] and mask [${attention_mask.dims}] do not match`);
  }
  const out = new ARRAY_OF[last_hidden_state.type](batch * width);
  for (let b = 0; b < batch; b++) {
    for (let k = 0; k < width; k++) {
      let sum = 0;
      let count = 0;
      for (let t = 0; t < tokens; t++) {
        const m = Number(attention_mask.data[b * tokens + t]);
        count += m;
        sum += last_hidden_state.data[(b * tokens + t) * width + k] * m;
      }
      out[b * width + k] = sum / count;
    }
  }
  return new Tensor(last_hidden_state.type, out, [batch, width]);
}

/**
 * Embeddings [n, width] as bits (1 where the value is above 0), 8 per byte, first bit highest:
 * 'ubinary' as uint8, 'binary' as int8 (the byte minus 128), as sentence-transformers packs them.
 */
export function quantize_embeddings(tensor, precision) {
  if (tensor.dims.length !== 2) throw new RangeError(`quantize_embeddings: the tensor must be [n, width], not [${tensor.dims}]`);
  if (tensor.dims[1] % 8 !== 0) throw new RangeError(`quantize_embeddings: the width ${tensor.dims[1]} is not a multiple of 8`);
  if (precision !== 'binary' && precision !== 'ubinary') throw new TypeError(`quantize_embeddings: precision must be 'binary' or 'ubinary', not ${JSON.stringify(precision)}`);
  const signed = precision === 'binary';
  const out = new (signed ? Int8Array : Uint8Array)(tensor.data.length / 8);
  for (let byte = 0; byte < out.length; byte++) {
    let bits = 0;
    for (let b = 0; b < 8; b++) bits = (bits << 1) | (tensor.data[byte * 8 + b] > 0 ? 1 : 0);
    out[byte] = signed ? bits - 128 : bits;
  }
  return new Tensor(signed ? 'int8' : 'uint8', out, [tensor.dims[0], tensor.dims[1] / 8]);
}

/** Cosine similarity of two vectors (as transformers.js's `cos_sim`). */
export function cos_sim(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / (Math.sqrt(na) * Math.sqrt(nb));
}
