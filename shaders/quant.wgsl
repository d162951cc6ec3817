// ggml's quantized blocks, read in place from `wq` (an array<u32> the including kernel binds).
// One flag picks the block type: Q8_0, Q4_0, Q4_1, Q4_K, Q5_K or Q6_K. Layouts and formulas are
// those of core/src/quant.rs, which tests these decoders through the kernels.
//
// `decode_unit(row, u)` gives the 32 consecutive weights [32u, 32u + 32) of the row starting at
// byte `row`, as 16 pairs: w[2i] = (v[4i], v[4i + 2]) and w[2i + 1] = (v[4i + 1], v[4i + 3]),
// the order in which 16-bit halves of a word hold bytes 0, 2 and 1, 3. Quantized integers become
// floats without conversion instructions (slow on GPUs): OR-ing a field into the mantissa of
// 1024.0 (f16) or 2^23 (f32) and subtracting that constant is exact. With the F16 flag the
// weights are computed as f16 pairs (packed arithmetic, half the registers), else as f32.
//
// Blocks start at even byte offsets; Q4_1, Q4_K and Q5_K blocks (20, 144, 176 bytes) always at
// word boundaries, Q8_0, Q4_0 and Q6_K blocks (34, 18, 210 bytes) only every other block.

#if F16
alias F = f16;
#else
alias F = f32;
#endif
alias F2 = vec2<F>;

struct Unit {
    w: array<F2, 16>,
}

// The 32 bits at even byte offset `at` (two loads where it straddles words).
fn word_at(at: u32) -> u32 {
    let i = at >> 2u;
    let lo = wq[i];
    let hi = wq[i + 1u];
    return select((lo >> 16u) | (hi << 16u), lo, (at & 2u) == 0u);
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
    // bitcast<vec2<f16>>(v) says this, but naga (wgpu 30) cannot bitcast u32 to vec2<f16> yet;
    // unpacking to f32 and back is exact, and compilers fold the round trip.
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
#endif

#if Q8_0
// 34 bytes: f16 d, 32 i8. Bytes are flipped to q + 128 so that they read as unsigned.
fn decode_unit(row: u32, u: u32) -> Unit {
    let at = row + u * 34u;
    let d = F(half_at(at));
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let w = word_at(at + 2u + 4u * i) ^ 0x80808080u;
        r.w[2u * i] = pair(w, 0u, 0xFFu, 128.0) * d;
        r.w[2u * i + 1u] = pair(w, 8u, 0xFFu, 128.0) * d;
    }
    return r;
}
#elif Q4_0
// 18 bytes: f16 d, 16 bytes of nibbles: low nibbles are values 0..16, high ones 16..32.
fn decode_unit(row: u32, u: u32) -> Unit {
    let at = row + u * 18u;
    let d = F(half_at(at));
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let w = word_at(at + 2u + 4u * i);
        r.w[2u * i] = pair(w, 0u, 0xFu, 8.0) * d;
        r.w[2u * i + 1u] = pair(w, 8u, 0xFu, 8.0) * d;
        r.w[8u + 2u * i] = pair(w, 4u, 0xFu, 8.0) * d;
        r.w[9u + 2u * i] = pair(w, 12u, 0xFu, 8.0) * d;
    }
    return r;
}
#elif Q4_1
// 20 bytes: f16 d, f16 m, nibbles as Q4_0; value = d q + m.
fn decode_unit(row: u32, u: u32) -> Unit {
    let base = (row + u * 20u) >> 2u;
    let dm = unpack2x16float(wq[base]);
    let d = F2(F(dm.x));
    let m = F2(F(dm.y));
    var r: Unit;
    for (var i = 0u; i < 4u; i++) {
        let w = wq[base + 1u + i];
        r.w[2u * i] = fma(pair(w, 0u, 0xFu, 0.0), d, m);
        r.w[2u * i + 1u] = fma(pair(w, 8u, 0xFu, 0.0), d, m);
        r.w[8u + 2u * i] = fma(pair(w, 4u, 0xFu, 0.0), d, m);
        r.w[9u + 2u * i] = fma(pair(w, 12u, 0xFu, 0.0), d, m);
    }
    return r;
}
#elif Q4_K
// 144 bytes: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles. Sub-block j (this unit) is
// nibble j % 2 of bytes [32 (j / 2), + 32); value = d sc q - dmin m.
fn decode_unit(row: u32, u: u32) -> Unit {
    let base = (row + (u >> 3u) * 144u) >> 2u;
    let j = u & 7u;
    let dm = unpack2x16float(wq[base]);
    let sm = scale_min_k4(wq[base + 1u], wq[base + 2u], wq[base + 3u], j);
    let scale = F2(F(dm.x * f32(sm.x)));
    let min = F2(F(-dm.y * f32(sm.y)));
    let q = base + 4u + 8u * (j >> 1u);
    let shift = 4u * (j & 1u);
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let w = wq[q + i];
        r.w[2u * i] = fma(pair(w, shift, 0xFu, 0.0), scale, min);
        r.w[2u * i + 1u] = fma(pair(w, shift + 8u, 0xFu, 0.0), scale, min);
    }
    return r;
}
#elif Q5_K
// 176 bytes: as Q4_K with 32 bytes of high bits after the scales: bit j of byte l is the fifth
// bit of value l of sub-block j.
fn decode_unit(row: u32, u: u32) -> Unit {
    let base = (row + (u >> 3u) * 176u) >> 2u;
    let j = u & 7u;
    let dm = unpack2x16float(wq[base]);
    let sm = scale_min_k4(wq[base + 1u], wq[base + 2u], wq[base + 3u], j);
    let scale = F2(F(dm.x * f32(sm.x)));
    let min = F2(F(-dm.y * f32(sm.y)));
    let q = base + 12u + 8u * (j >> 1u);
    let shift = 4u * (j & 1u);
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let v = ((wq[q + i] >> shift) & 0x0F0F0F0Fu) | (((wq[base + 4u + i] >> j) & 0x01010101u) << 4u);
        r.w[2u * i] = fma(pair(v, 0u, 0x1Fu, 0.0), scale, min);
        r.w[2u * i + 1u] = fma(pair(v, 8u, 0x1Fu, 0.0), scale, min);
    }
    return r;
}
#elif Q6_K
// 210 bytes: 128 bytes of low nibbles, 64 of 2-bit high parts, 16 i8 scales (one per 16
// values), f16 d. Value 128 n + 32 s + l takes nibble s / 2 of byte 64 n + 32 (s % 2) + l and bits
// 2s of byte 128 + 32 n + l; value = d sc (q - 32).
fn decode_unit(row: u32, u: u32) -> Unit {
    let at = row + (u >> 3u) * 210u;
    let n = (u >> 2u) & 1u;
    let s = u & 3u;
    let d = half_at(at + 208u);
    let sc = at + 192u + 8u * n + 2u * s;
    let lo = F(d * f32(sbyte_at(sc)));
    let hi = F(d * f32(sbyte_at(sc + 1u)));
    let ql = at + 64u * n + 32u * (s & 1u);
    let qh = at + 128u + 32u * n;
    let nshift = 4u * (s >> 1u);
    let hshift = 2u * s;
    var r: Unit;
    for (var i = 0u; i < 8u; i++) {
        let v = ((word_at(ql + 4u * i) >> nshift) & 0x0F0F0F0Fu) | (((word_at(qh + 4u * i) >> hshift) & 0x03030303u) << 4u);
        let scale = select(hi, lo, i < 4u);
        r.w[2u * i] = pair(v, 0u, 0x3Fu, 32.0) * scale;
        r.w[2u * i + 1u] = pair(v, 8u, 0x3Fu, 32.0) * scale;
    }
    return r;
}
#endif
