// Rotary embeddings' sin and cos, shared by rope.wgsl and attention.wgsl (ROPE: queries rotated
// as they are loaded).

// sin and cos of the angle position * freq, formed in f32 as PyTorch does, then brought into
// [-pi, pi] (positions times frequencies reach far beyond it).
fn rotary_sin_cos(position: u32, freq: f32) -> vec2<f32> {
    let angle = f32(position) * freq;
    // 2 pi in two parts (Cody-Waite): k * 6.28125 is exact in f32, so large angles lose
    // nothing to the reduction itself.
    let k = round(angle * 0.15915494);
    let reduced = (angle - k * 6.28125) - k * 0.0019353072;
    return sin_cos(reduced);
}

// sin and cos of a in [-pi, pi] to about f32 rounding. WGSL's builtins need only be within 2^-11
// there, and some are (SwiftShader's: 2e-4 on rotated q and k, 2e-3 on a tiny decoder's logits).
// a = q pi/2 + r with |r| <= pi/4, where short Taylor series are exact to f32 (next terms < 2e-9).
fn sin_cos(a: f32) -> vec2<f32> {
    let q = round(a * 0.63661977);
    // pi/2 in two parts, as above; q is at most 2, so the products are exact enough.
    let r = (a - q * 1.5703125) - q * 4.8382679e-4;
    let r2 = r * r;
    let s = r * (1.0 + r2 * (-1.6666667e-1 + r2 * (8.3333333e-3 + r2 * (-1.9841270e-4 + r2 * 2.7557319e-6))));
    let c = 1.0 + r2 * (-0.5 + r2 * (4.1666667e-2 + r2 * (-1.3888889e-3 + r2 * (2.4801587e-5 - r2 * 2.7557319e-7))));
    switch (i32(q) & 3) {
        case 1: { return vec2<f32>(c, -s); }
        case 2: { return vec2<f32>(-s, -c); }
        case 3: { return vec2<f32>(-c, s); }
        default: { return vec2<f32>(s, c); }
    }
}
