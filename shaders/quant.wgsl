// ggml's quantized blocks, read in place from `wq` (an array<u32> the including kernel binds).
// One flag picks the block type: Q8_0, Q4_0, Q4_1, Q4_K, Q5_K or Q6_K. Layouts and formulas are
// those of core/src/quant.rs, which tests these decoders through the kernels.
//
// A unit is 32 consecutive weights [32u, 32u + 32) of a row (a block of the 32-value types, a
// sub-block of the k-quants), in 4 groups of 8 weights: the two runs of 4 at `x_offsets(i)`.
// A group is the work of one invocation, so that neighbouring invocations read neighbouring
// words of W and of the activations (coalesced loads):
// - `load_group(row, u, i)`: the words group i of unit u needs and its (scale, min), all loaded
//   at once (`row` is the row's byte offset);
// - `group_q(raw)`: the group's quantized integers, exact, as pairs in the order in which the
//   16-bit halves of a word hold bytes 0, 2 and 1, 3;
// - `scaled(q, raw.s)`: the weights; `weights(raw)` is both steps.
// Kernels keep everything in named values, never in arrays, so nothing spills to memory
// whether or not a driver unrolls the loops. Integers become floats without conversion
// instructions (slow on GPUs): OR-ing a field into the mantissa of 1024.0 (f16) or 2^23 (f32)
// and subtracting that constant is exact. With the F16 flag, weights are computed as f16 pairs
// (packed arithmetic, half the registers), else as f32.
//
// Blocks start at even byte offsets; Q4_1, Q4_K and Q5_K blocks (20, 144, 176 bytes) always at
// word boundaries, Q8_0, Q4_0 and Q6_K blocks (34, 18, 210 bytes) only every other block.
//
// DENSE_F32 and DENSE_F16 read plain f32 / f16 rows through the same interface (the decode
// kernel over non-quantized weights): a unit is 32 values as they are, `weights(raw)` needs no
// scale. Their rows start at word boundaries (the host checks).

#if F16
alias F = f16;
#else
alias F = f32;
#endif
alias F2 = vec2<F>;

// Weights v0..v3 (at x_offsets(i).x) as a = (v0, v2), b = (v1, v3); v4..v7 (at .y) as c, d.
struct Group {
    a: F2,
    b: F2,
    c: F2,
    d: F2,
}

// A group from two words of byte-wide fields, 4 values each.
fn group_of(w0: u32, w1: u32, shift: u32, mask: u32, offset: F) -> Group {
    return Group(pair(w0, shift, mask, offset), pair(w0, shift + 8u, mask, offset), pair(w1, shift, mask, offset), pair(w1, shift + 8u, mask, offset));
}

#if DENSE_F32 || DENSE_F16
// The group's words: 8 f32 (lo, hi), or 8 f16 two a word (lo; hi unused).
struct Raw {
    lo: vec4<u32>,
    hi: vec4<u32>,
}
#else
// A group's words (w.y unused by the nibble types) and (scale, min).
struct Raw {
    s: vec2<F>,
    w: vec2<u32>,
}
#endif

// The weights of a group: its integers times the scale, plus the min.
fn scaled(q: Group, s: vec2<F>) -> Group {
#if Q4_1 || Q4_K || Q5_K
    let k = F2(s.x);
    let m = F2(s.y);
    return Group(fma(q.a, k, m), fma(q.b, k, m), fma(q.c, k, m), fma(q.d, k, m));
#else
    let k = F2(s.x);
    return Group(q.a * k, q.b * k, q.c * k, q.d * k);
#endif
}

// The word starting 2 bytes into `lo` when `odd` (a run of bytes at an offset of 2 mod 4).
fn realign(lo: u32, hi: u32, odd: bool) -> u32 {
    return select(lo, (lo >> 16u) | (hi << 16u), odd);
}

// The word of bytes [at, at + 4), `at` even.
fn word_at(at: u32) -> u32 {
    let i = at >> 2u;
    return realign(wq[i], wq[i + 1u], (at & 2u) != 0u);
}

// The 2 words of bytes [at, at + 8), `at` even: 3 aligned loads.
fn words2_at(at: u32) -> vec2<u32> {
    let i = at >> 2u;
    let odd = (at & 2u) != 0u;
    let w0 = wq[i];
    let w1 = wq[i + 1u];
    let w2 = wq[i + 2u];
    return vec2<u32>(realign(w0, w1, odd), realign(w1, w2, odd));
}

// The f16 at even byte offset `at`, as f32.
fn half_at(at: u32) -> f32 {
    return unpack2x16float(wq[at >> 2u] >> ((at & 2u) * 8u)).x;
}

// The signed byte at byte offset `at`.
fn sbyte_at(at: u32) -> i32 {
    let b = (wq[at >> 2u] >> ((at & 3u) * 8u)) & 0xFFu;
    return i32(b << 24u) >> 24u;
}

// The fields (w >> shift) & mask of both 16-bit halves of `w`, minus `offset`: exact integers.
fn pair(w: u32, shift: u32, mask: u32, offset: F) -> F2 {
#if F16
    // bitcast<vec2<f16>>(v) says this, but naga (wgpu 30) cannot bitcast u32 to vec2<f16> yet
    // (gfx-rs/wgpu#8896); unpacking to f32 and back is exact, and compilers may fold it.
    let v = ((w >> shift) & (mask | (mask << 16u))) | 0x64006400u;
    return F2(unpack2x16float(v)) - F2(1024.0 + offset);
#else
    let v = (vec2<u32>(w, w >> 16u) >> vec2<u32>(shift)) & vec2<u32>(mask);
    return bitcast<vec2<f32>>(v | vec2<u32>(0x4B000000u)) - F2(8388608.0 + offset);
#endif
}

#if Q4_K || Q5_K
fn kbyte(w: u32, i: u32) -> u32 {
    return (w >> (8u * i)) & 0xFFu;
}

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K block, from its 12 scale bytes (three
// words): j < 4 in the low bits of bytes j and j + 4; j >= 4 split over a nibble of byte j + 4 and
// the top bits of bytes j - 4 and j.
fn scale_min_k4(s0: u32, s1: u32, s2: u32, j: u32) -> vec2<u32> {
    let i = j & 3u;
    let lo = vec2<u32>(kbyte(s0, i) & 63u, kbyte(s1, i) & 63u);
    let b = kbyte(s2, i);
    let hi = vec2<u32>((b & 0xFu) | ((kbyte(s0, i) >> 6u) << 4u), (b >> 4u) | ((kbyte(s1, i) >> 6u) << 4u));
    return select(hi, lo, j < 4u);
}

// (d sc, -dmin m) of sub-block u % 8 of the block starting at word `base`.
fn k4_scale(base: u32, u: u32) -> vec2<F> {
    let dm = unpack2x16float(wq[base]);
    let sm = scale_min_k4(wq[base + 1u], wq[base + 2u], wq[base + 3u], u & 7u);
    return vec2<F>(F(dm.x * f32(sm.x)), F(-dm.y * f32(sm.y)));
}
#endif

#if Q4_0 || Q4_1
// Low nibbles of the 16 quant bytes are values 0..16, high nibbles 16..32: group i is word i.
fn x_offsets(i: u32) -> vec2<u32> {
    return vec2<u32>(4u * i, 16u + 4u * i);
}

// One word: its low nibbles are the first 4 values, its high nibbles the second 4.
fn group_q(r: Raw) -> Group {
    let w = r.w.x;
#if Q4_0
    let offset = F(8.0);
#else
    let offset = F(0.0);
#endif
    return Group(pair(w, 0u, 0xFu, offset), pair(w, 8u, 0xFu, offset), pair(w, 4u, 0xFu, offset), pair(w, 12u, 0xFu, offset));
}
#else
fn x_offsets(i: u32) -> vec2<u32> {
    return vec2<u32>(8u * i, 8u * i + 4u);
}
#endif

#if DENSE_F32
// 128 bytes a unit; group i is the 8 values from 8i.
fn load_group(row: u32, u: u32, i: u32) -> Raw {
    let j = (row + u * 128u + 32u * i) >> 2u;
    return Raw(vec4<u32>(wq[j], wq[j + 1u], wq[j + 2u], wq[j + 3u]), vec4<u32>(wq[j + 4u], wq[j + 5u], wq[j + 6u], wq[j + 7u]));
}

fn weights(r: Raw) -> Group {
    let lo = bitcast<vec4<f32>>(r.lo);
    let hi = bitcast<vec4<f32>>(r.hi);
    return Group(F2(lo.xz), F2(lo.yw), F2(hi.xz), F2(hi.yw));
}
#elif DENSE_F16
// 64 bytes a unit; group i is the 4 words from 16i bytes, values (0, 1), (2, 3)...
fn load_group(row: u32, u: u32, i: u32) -> Raw {
    let j = (row + u * 64u + 16u * i) >> 2u;
    return Raw(vec4<u32>(wq[j], wq[j + 1u], wq[j + 2u], wq[j + 3u]), vec4<u32>(0u));
}

fn weights(r: Raw) -> Group {
    let v01 = unpack2x16float(r.lo.x);
    let v23 = unpack2x16float(r.lo.y);
    let v45 = unpack2x16float(r.lo.z);
    let v67 = unpack2x16float(r.lo.w);
    return Group(F2(vec2<f32>(v01.x, v23.x)), F2(vec2<f32>(v01.y, v23.y)), F2(vec2<f32>(v45.x, v67.x)), F2(vec2<f32>(v45.y, v67.y)));
}
#elif Q8_0
// 34 bytes: f16 d, 32 i8. Bytes are flipped to q + 128 so that they read as unsigned.
fn load_group(row: u32, u: u32, i: u32) -> Raw {
    let at = row + u * 34u;
    return Raw(vec2<F>(F(half_at(at)), F(0.0)), words2_at(at + 2u + 8u * i) ^ vec2<u32>(0x80808080u));
}

fn group_q(r: Raw) -> Group {
    return group_of(r.w.x, r.w.y, 0u, 0xFFu, 128.0);
}
#elif Q4_0
// 18 bytes: f16 d, 16 bytes of nibbles; value = d (q - 8).
fn load_group(row: u32, u: u32, i: u32) -> Raw {
    let at = row + u * 18u;
    return Raw(vec2<F>(F(half_at(at)), F(0.0)), vec2<u32>(word_at(at + 2u + 4u * i), 0u));
}
#elif Q4_1
// 20 bytes: f16 d, f16 m, nibbles as Q4_0; value = d q + m.
fn load_group(row: u32, u: u32, i: u32) -> Raw {
    let base = (row + u * 20u) >> 2u;
    let dm = unpack2x16float(wq[base]);
    return Raw(vec2<F>(F(dm.x), F(dm.y)), vec2<u32>(wq[base + 1u + i], 0u));
}
#elif Q4_K
// 144 bytes: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles. Sub-block j = u % 8 is
// nibble j % 2 of bytes [32 (j / 2), + 32); value = d sc q - dmin m.
fn load_group(row: u32, u: u32, i: u32) -> Raw {
    let j = u & 7u;
    let base = (row + (u >> 3u) * 144u) >> 2u;
    let q = base + 4u + 8u * (j >> 1u) + 2u * i;
    return Raw(k4_scale(base, u), vec2<u32>(wq[q], wq[q + 1u]) >> vec2<u32>(4u * (j & 1u)));
}

fn group_q(r: Raw) -> Group {
    return group_of(r.w.x, r.w.y, 0u, 0xFu, 0.0);
}
#elif Q5_K
// 176 bytes: as Q4_K with 32 bytes of high bits after the scales: bit j of byte l is the fifth
// bit of value l of sub-block j.
fn load_group(row: u32, u: u32, i: u32) -> Raw {
    let j = u & 7u;
    let base = (row + (u >> 3u) * 176u) >> 2u;
    let q = base + 12u + 8u * (j >> 1u) + 2u * i;
    let h = base + 4u + 2u * i;
    let low = (vec2<u32>(wq[q], wq[q + 1u]) >> vec2<u32>(4u * (j & 1u))) & vec2<u32>(0x0F0F0F0Fu);
    let high = ((vec2<u32>(wq[h], wq[h + 1u]) >> vec2<u32>(j)) & vec2<u32>(0x01010101u)) << vec2<u32>(4u);
    return Raw(k4_scale(base, u), low | high);
}

fn group_q(r: Raw) -> Group {
    return group_of(r.w.x, r.w.y, 0u, 0x1Fu, 0.0);
}
#elif Q6_K
// 210 bytes: 128 bytes of low nibbles, 64 of 2-bit high parts, 16 i8 scales (one per 16 values),
// f16 d. Unit u is values 128 n + 32 s + [0, 32) of its block (n = u % 8 / 4, s = u % 4), which
// take nibble s / 2 of bytes 64 n + 32 (s % 2) + l and bits 2s of bytes 128 + 32 n + l;
// value = d sc (q - 32). Raw holds the assembled 6-bit values, one per byte.
fn load_group(row: u32, u: u32, i: u32) -> Raw {
    let at = row + (u >> 3u) * 210u;
    let n = (u >> 2u) & 1u;
    let s = u & 3u;
    // Group i is values 8i.. of the unit: the first 16 share one scale, the last 16 the next.
    let scale = half_at(at + 208u) * f32(sbyte_at(at + 192u + 8u * n + 2u * s + i / 2u));
    let ql = words2_at(at + 64u * n + 32u * (s & 1u) + 8u * i);
    let qh = words2_at(at + 128u + 32u * n + 8u * i);
    let w = ((ql >> vec2<u32>(4u * (s >> 1u))) & vec2<u32>(0x0F0F0F0Fu)) | (((qh >> vec2<u32>(2u * s)) & vec2<u32>(0x03030303u)) << vec2<u32>(4u));
    return Raw(vec2<F>(F(scale), F(0.0)), w);
}

fn group_q(r: Raw) -> Group {
    return group_of(r.w.x, r.w.y, 0u, 0x3Fu, 32.0);
}
#endif

#if !DENSE_F32 && !DENSE_F16
// The group's weights.
fn weights(r: Raw) -> Group {
    return scaled(group_q(r), r.s);
}
#endif
