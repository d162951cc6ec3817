// Multi-head attention over packed sequences, one workgroup per (query token, head).
// Sequence s owns query rows q_offsets[s].. and key rows kv_offsets[s]..; with `causal` the
// queries are the sequence's last tokens (bottom-right alignment, as with a KV cache), and a
// query at key position pos sees only keys j with |pos - j| <= window (2^30: no window).
// Keys are visited in tiles of WG with an online softmax (running max m and sum l), so any
// sequence length fits in fixed workgroup memory. Heads of size D <= 256; with grouped-query
// attention, query head h reads key/value head h / (Hq / Hkv). BIAS adds a bias by distance to
// each score: row h of a table [Hq, 2c + 1] at c + clamp(j - pos, -c, c) (T5's relative
// position buckets, which saturate, so the table is the same for any length). ROPE rotates the
// queries as they are loaded (query row t at positions[t], pairs as rope.wgsl makes them, the
// first 2 p.half dims), so a decoder's queries need no dispatch of their own. APPEND (with ROPE;
// one query row per sequence, a decode step): `k` and `v` hold the new token's key and value
// heads as the projection made them; keys before it come from `cache` [rows, 2 Hkv, D] (keys'
// heads, then values'), and the first query head of each KV group writes the new key (rotated)
// and value into the cache at the query's row, which no workgroup reads from the cache: the
// cache write, the rotations and attention in one dispatch. KV_F16: the stored keys and values
// (k and v, or the cache with APPEND) are f16, a half-size KV cache; arithmetic stays f32.
#include "common.wgsl"
#include "reduce.wgsl"
#if ROPE
#include "rotary.wgsl"
#endif

#if KV_F16
alias kv_elem = f16;
#else
alias kv_elem = f32;
#endif

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
#if APPEND
// The new token's key and value, as the projection made them.
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
#else
@group(0) @binding(2) var<storage, read> k: array<kv_elem>;
@group(0) @binding(3) var<storage, read> v: array<kv_elem>;
#endif
@group(0) @binding(4) var<storage, read> q_offsets: array<u32>;
@group(0) @binding(5) var<storage, read> kv_offsets: array<u32>;
#if BIAS
@group(0) @binding(6) var<storage, read> bias: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
#elif APPEND
@group(0) @binding(6) var<storage, read> positions: array<u32>;
@group(0) @binding(7) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(8) var<storage, read_write> cache: array<kv_elem>;
@group(0) @binding(9) var<storage, read_write> out: array<f32>;
#elif ROPE
@group(0) @binding(6) var<storage, read> positions: array<u32>;
@group(0) @binding(7) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
#endif

const MAX_D: u32 = 256u;
const PER_THREAD: u32 = MAX_D / WG;
var<workgroup> q_row: array<f32, MAX_D>;
#if APPEND
// The new token's rotated key and its value (the cache's row `query_row`, being written).
var<workgroup> k_new: array<f32, MAX_D>;
var<workgroup> v_new: array<f32, MAX_D>;
#endif
var<workgroup> probs: array<f32, WG>;
var<workgroup> key_range: vec2<u32>;
// The key row the query sits at (k_start + pos), for BIAS's distances.
var<workgroup> query_row: i32;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
#if SUBGROUPS
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
#endif
) {
#if !SUBGROUPS
    let sg_size = 0u;
    let sg_lane = 0u;
#endif
    let t = wg.x;
    let h = wg.y;
    let kv_h = h / (p.hq / p.hkv);

    // The key range comes from storage, which WGSL deems non-uniform; loading it through
    // workgroup memory makes the tile loop (and its barriers) uniform.
    if lid == 0u {
        var seq = 0u;
        while seq + 1u < p.seqs && q_offsets[seq + 1u] <= t {
            seq += 1u;
        }
        // In i32 relative to the sequence's first key: pos < 2^30 and window <= 2^30.
        let q_start = q_offsets[seq];
        let q_len = i32(q_offsets[seq + 1u] - q_start);
        let k_start = kv_offsets[seq];
        let k_len = i32(kv_offsets[seq + 1u] - k_start);
        // The queries are the sequence's last q_len positions.
        let pos = k_len - q_len + i32(t - q_start);
        let w = i32(p.window);
        let lo = max(0, pos - w);
        var hi = min(k_len, pos + w + 1);
        if p.causal != 0u {
            // Rows left after this query in its sequence are hidden from it.
            hi = min(hi, pos + 1);
        }
        let start = k_start + u32(lo);
        let end = k_start + u32(max(hi, lo));
        key_range = vec2<u32>(start, end);
        query_row = i32(k_start) + pos;
    }
    let range = workgroupUniformLoad(&key_range);
#if BIAS
    let c = i32(p.bias_c);
    let bias_row = p.bias_off + h * (2u * p.bias_c + 1u);
    let origin = workgroupUniformLoad(&query_row);
#endif
    let start = range.x;
    let end = range.y;

    let q_base = p.q_off + t * p.q_st + h * p.q_sh;
    for (var i = lid; i < p.d; i += WG) {
#if ROPE
        q_row[i] = rotated_q(q_base, i, positions[t]) * p.scale;
#else
        q_row[i] = q[q_base + i] * p.scale;
#endif
    }
#if APPEND
    // A cache row: keys' heads then values'.
    let row_len = 2u * p.hkv * p.d;
    let new_row = u32(workgroupUniformLoad(&query_row));
    let k_base = p.k_off + t * p.k_st + kv_h * p.k_sh;
    let v_base = p.v_off + t * p.v_st + kv_h * p.v_sh;
    for (var i = lid; i < p.d; i += WG) {
        k_new[i] = rotated_k(k_base, i, positions[t]);
        v_new[i] = v[v_base + i];
    }
    workgroupBarrier();
    if h % (p.hq / p.hkv) == 0u {
        let dst = new_row * row_len + kv_h * p.d;
        for (var i = lid; i < p.d; i += WG) {
            cache[dst + i] = kv_elem(k_new[i]);
            cache[dst + p.hkv * p.d + i] = kv_elem(v_new[i]);
        }
    }
#endif
    workgroupBarrier();

    var m = -3.0e38;
    var l = 0.0;
    var acc: array<f32, PER_THREAD>;
    for (var k0 = start; k0 < end; k0 += WG) {
        let j = k0 + lid;
        var score = -3.0e38;
        if j < end {
            var dot = 0.0;
#if APPEND
            if j == new_row {
                for (var i = 0u; i < p.d; i++) {
                    dot += q_row[i] * k_new[i];
                }
            } else {
                let kb = j * row_len + kv_h * p.d;
                for (var i = 0u; i < p.d; i++) {
                    dot += q_row[i] * f32(cache[kb + i]);
                }
            }
#else
            let kb = p.k_off + j * p.k_st + kv_h * p.k_sh;
            for (var i = 0u; i < p.d; i++) {
                dot += q_row[i] * f32(k[kb + i]);
            }
#endif
            score = dot;
#if BIAS
            score += bias[bias_row + u32(c + clamp(i32(j) - origin, -c, c))];
#endif
        }
        let m_new = max(m, workgroup_max(score, lid, sg_size, sg_lane));
        var pj = 0.0;
        if j < end {
            pj = exp(score - m_new);
        }
        probs[lid] = pj;
        let correction = exp(m - m_new);
        l = l * correction + workgroup_sum(pj, lid, sg_size, sg_lane);
        m = m_new;
        // workgroup_sum's barrier made every probs[] write visible.
        let n = min(WG, end - k0);
        for (var r = 0u; r < PER_THREAD; r++) {
            let dim = lid + r * WG;
            if dim < p.d {
                var sum = acc[r] * correction;
                for (var jj = 0u; jj < n; jj++) {
#if APPEND
                    let j = k0 + jj;
                    var value = v_new[dim];
                    if j != new_row {
                        value = f32(cache[j * row_len + (p.hkv + kv_h) * p.d + dim]);
                    }
                    sum += probs[jj] * value;
#else
                    sum += probs[jj] * f32(v[p.v_off + (k0 + jj) * p.v_st + kv_h * p.v_sh + dim]);
#endif
                }
                acc[r] = sum;
            }
        }
        workgroupBarrier();
    }

    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var r = 0u; r < PER_THREAD; r++) {
        let dim = lid + r * WG;
        if dim < p.d {
            out[(t * p.hq + h) * p.d + dim] = acc[r] * inv;
        }
    }
}

#if ROPE
// Dim i's rotation pair (a, b) and its frequency's slot, as rope.wgsl pairs them: (2j, 2j + 1)
// when INTERLEAVED, else (j, j + half). Only for i < 2 half.
fn rotary_pair(i: u32) -> vec3<u32> {
#if INTERLEAVED
    let slot = i / 2u;
    return vec3<u32>(2u * slot, 2u * slot + 1u, slot);
#else
    let slot = i % p.half;
    return vec3<u32>(slot, slot + p.half, slot);
#endif
}

// Dim i of a rotated row whose pair holds (xa, xb), with rope.wgsl's arithmetic.
fn rotated(i: u32, pair: vec3<u32>, xa: f32, xb: f32, position: u32) -> f32 {
    let sc = rotary_sin_cos(position, inv_freq[pair.z]);
    if i == pair.x {
        return xa * sc.y - xb * sc.x;
    }
    return xb * sc.y + xa * sc.x;
}

// Dim i of the query row at `base` rotated to `position`; dims past 2 half unchanged.
fn rotated_q(base: u32, i: u32, position: u32) -> f32 {
    if i >= 2u * p.half {
        return q[base + i];
    }
    let pair = rotary_pair(i);
    return rotated(i, pair, q[base + pair.x], q[base + pair.y], position);
}
#endif

#if APPEND
// The same for the new key row at `base`.
fn rotated_k(base: u32, i: u32, position: u32) -> f32 {
    if i >= 2u * p.half {
        return k[base + i];
    }
    let pair = rotary_pair(i);
    return rotated(i, pair, k[base + pair.x], k[base + pair.y], position);
}
#endif
