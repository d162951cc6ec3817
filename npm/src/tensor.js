// The result type of feature-extraction, shaped like transformers.js's Tensor.

export class Tensor {
  /**
   * @param {'float32'} type
   * @param {Float32Array} data row-major
   * @param {number[]} dims
   */
  constructor(type, data, dims) {
    this.type = type;
    this.data = data;
    this.dims = dims;
  }

  /** The number of elements. */
  get size() {
    return this.data.length;
  }

  /** Nested arrays of numbers, one level per dimension. */
  tolist() {
    const { data, dims } = this;
    if (dims.length === 0) return data[0];
    const build = (offset, d) => {
      const n = dims[d];
      if (d === dims.length - 1) return Array.from(data.subarray(offset, offset + n));
      const stride = dims.slice(d + 1).reduce((a, b) => a * b, 1);
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = build(offset + i * stride, d + 1);
      return out;
    };
    return build(0, 0);
  }

  /** Nothing to free: the data lives in JavaScript memory. Kept for transformers.js code. */
  dispose() {}
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
