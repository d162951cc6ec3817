// Quantizes dense float rows into ggml blocks when weights load at dtype 'q8' or 'q4', with the
// CPU quantizer's arithmetic (quant.rs, `quantize_at_load`): Q8_0 scales by the largest magnitude
// and rounds half away from zero; Q4_0 maps the value of largest magnitude to -8; Q4_1 takes the
// scale and min of least squared error (`q4_1_searched`).
// Blocks are 34 (Q8_0), 18 (Q4_0) or 20 (Q4_1) bytes, so one invocation writes a unit of whole
// u32 words: two blocks (17 or 9 words), or one Q4_1 block (5 words); no word is shared.
#include "common.wgsl"

@group(0) @binding(0) var<uniform> p: Params;
#if SRC_F32
@group(0) @binding(1) var<storage, read> src: array<f32>;
#else
@group(0) @binding(1) var<storage, read> src: array<u32>;
#endif
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

#if Q8_0
const BLOCK_BYTES = 34u;
const UNIT_BLOCKS = 2u;
const UNIT_WORDS = 17u;
#elif Q4_0
const BLOCK_BYTES = 18u;
const UNIT_BLOCKS = 2u;
const UNIT_WORDS = 9u;
#else
const BLOCK_BYTES = 20u;
const UNIT_BLOCKS = 1u;
const UNIT_WORDS = 5u;
#endif

var<private> words: array<u32, 17>;

fn load(i: u32) -> f32 {
    let at = p.src_off + i;
#if SRC_F32
    return src[at];
#elif SRC_F16
    return unpack2x16float(src[at >> 1u])[at & 1u];
#else
    let word = src[at >> 1u];
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (at & 1u) == 1u));
#endif
}

fn put_byte(at: u32, byte: u32) {
    words[at >> 2u] |= (byte & 0xffu) << ((at & 3u) * 8u);
}

#if Q4_1
const Q4_1_SEARCH_STEPS = 20;

// The block's values and the levels of the spacing being tried.
var<private> xs: array<f32, 32>;
var<private> ls: array<f32, 32>;

// `v` rounded to the nearest f16, as stored.
fn f16_round(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

// Levels 0..=15 for a spacing 1 / `scale` from `lo` (values >= lo: truncation rounds to nearest).
fn set_levels(lo: f32, scale: f32) {
    for (var j = 0u; j < 32u; j++) {
        ls[j] = f32(min(i32((xs[j] - lo) * scale + 0.5), 15));
    }
}

fn lane_total(acc: array<f32, 8>) -> f32 {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Squared error of `d * level + m` against the block's values.
fn level_error(d: f32, m: f32) -> f32 {
    var acc: array<f32, 8>;
    for (var j = 0u; j < 32u; j++) {
        let diff = d * ls[j] + m - xs[j];
        acc[j % 8u] += diff * diff;
    }
    return lane_total(acc);
}
#endif

fn put_f16(at: u32, v: f32) {
    let bits = pack2x16float(vec2<f32>(v, 0.0));
    put_byte(at, bits);
    put_byte(at + 1u, bits >> 8u);
}

// Block `b` of the input into bytes [at, at + BLOCK_BYTES) of the unit's words.
fn quantize_block(b: u32, at: u32) {
    let first = b * 32u;
#if Q8_0
    var amax = 0.0;
    for (var j = 0u; j < 32u; j++) {
        amax = max(amax, abs(load(first + j)));
    }
    let d = amax / 127.0;
    let id = select(0.0, 1.0 / d, d != 0.0);
    put_f16(at, d);
    for (var j = 0u; j < 32u; j++) {
        let x = load(first + j) * id;
        let q = i32(sign(x) * floor(abs(x) + 0.5));
        put_byte(at + 2u + j, u32(q));
    }
#elif Q4_0
    var max_v = 0.0;
    for (var j = 0u; j < 32u; j++) {
        let v = load(first + j);
        if abs(v) > abs(max_v) {
            max_v = v;
        }
    }
    let d = max_v / -8.0;
    let id = select(0.0, 1.0 / d, d != 0.0);
    put_f16(at, d);
    for (var j = 0u; j < 16u; j++) {
        let lo = min(u32(load(first + j) * id + 8.5), 15u);
        let hi = min(u32(load(first + 16u + j) * id + 8.5), 15u);
        put_byte(at + 2u + j, lo | (hi << 4u));
    }
#else
    // Q4_1 as quant::q4_1_searched: of round-to-nearest over min..max and the least-squares fits
    // of 21 other level spacings, the (f16) scale and min of least squared error. Sums run in
    // quant::lane_sum's order.
    var lo_v = load(first);
    var hi_v = lo_v;
    for (var j = 0u; j < 32u; j++) {
        xs[j] = load(first + j);
        lo_v = min(lo_v, xs[j]);
        hi_v = max(hi_v, xs[j]);
    }
    let range = hi_v - lo_v;
    let d = range / 15.0;
    let id = select(0.0, 1.0 / d, d != 0.0);
    var best_d = f16_round(d);
    var best_m = f16_round(lo_v);
    var best_scale = id;
    if range > 0.0 {
        set_levels(lo_v, id);
        var best_err = level_error(best_d, best_m);
        var acc: array<f32, 8>;
        for (var j = 0u; j < 32u; j++) {
            acc[j % 8u] += xs[j];
        }
        let sx = lane_total(acc);
        for (var i = 0; i <= Q4_1_SEARCH_STEPS; i++) {
            let iscale = (14.0 + 0.1 * f32(i)) / range;
            set_levels(lo_v, iscale);
            var a_l: array<f32, 8>;
            var a_l2: array<f32, 8>;
            var a_xl: array<f32, 8>;
            for (var j = 0u; j < 32u; j++) {
                a_l[j % 8u] += ls[j];
                a_l2[j % 8u] += ls[j] * ls[j];
                a_xl[j % 8u] += xs[j] * ls[j];
            }
            let sl = lane_total(a_l);
            let sl2 = lane_total(a_l2);
            let sxl = lane_total(a_xl);
            let det = 32.0 * sl2 - sl * sl;
            let scale = (32.0 * sxl - sx * sl) / det;
            let offset = (sl2 * sx - sl * sxl) / det;
            if det <= 0.0 || scale <= 0.0 {
                continue;
            }
            let ds = f16_round(scale);
            let ms = f16_round(offset);
            let err = level_error(ds, ms);
            if err < best_err {
                best_err = err;
                best_d = ds;
                best_m = ms;
                best_scale = iscale;
            }
        }
    }
    set_levels(lo_v, best_scale);
    put_f16(at, best_d);
    put_f16(at + 2u, best_m);
    for (var j = 0u; j < 16u; j++) {
        put_byte(at + 4u + j, u32(ls[j]) | (u32(ls[16u + j]) << 4u));
    }
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let unit = flat_index(wg, nwg, lid, WG);
    let first = unit * UNIT_BLOCKS;
    if first >= p.blocks {
        return;
    }
    for (var w = 0u; w < UNIT_WORDS; w++) {
        words[w] = 0u;
    }
    let blocks = min(UNIT_BLOCKS, p.blocks - first);
    for (var b = 0u; b < blocks; b++) {
        quantize_block(first + b, b * BLOCK_BYTES);
    }
    // A last unit of one block writes the words its bytes touch.
    let n = (blocks * BLOCK_BYTES + 3u) / 4u;
    for (var w = 0u; w < n; w++) {
        dst[unit * UNIT_WORDS + w] = words[w];
    }
}
