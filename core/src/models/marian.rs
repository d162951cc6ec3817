//! Marian (transformers' `MarianMTModel`, the opus-mt family): the BART family's layers
//! (bart.rs) with static sinusoidal positions, which checkpoints do not store: transformers
//! computes them at load (`MarianSinusoidalPositionalEmbedding`), sines in the first half of each
//! row and cosines in the second. Token embeddings are scaled by sqrt(d_model)
//! (`scale_embedding`), there is no `layernorm_embedding`, and the decoder starts from the pad
//! token. Source and target embeddings are one table (`model.shared`) or, with
//! `share_encoder_decoder_embeddings: false`, two (the target's of `decoder_vocab_size` rows).

use super::bart::{Bart, BartConfig, Positions};
use crate::Result;
use crate::weights::Weights;

/// transformers' sinusoid table [positions, dim], row-major: column j < dim/2 (rounded up) is
/// sin(p / 10000^(2j/dim)), column dim/2 + j is cos(p / 10000^(2j/dim)); computed in f64 as
/// numpy does, then rounded to f32.
pub fn sinusoidal_positions(positions: usize, dim: usize) -> Vec<f32> {
    let sines = dim.div_ceil(2);
    let mut table = vec![0f32; positions * dim];
    for p in 0..positions {
        let row = &mut table[p * dim..(p + 1) * dim];
        for (j, v) in row.iter_mut().enumerate() {
            // numpy's `position_enc[:, 0::2]` / `[:, 1::2]`: even columns j = 2i feed the
            // sines, odd ones j = 2i + 1 the cosines, both at frequency index i
            let (i, sine) = if j < sines { (j, true) } else { (j - sines, false) };
            let angle = p as f64 / 10000f64.powf((2 * i) as f64 / dim as f64);
            *v = if sine { angle.sin() } else { angle.cos() } as f32;
        }
    }
    table
}

pub fn load(config: BartConfig, vb: &Weights) -> Result<Bart> {
    let positions = Positions::Fixed(sinusoidal_positions(config.max_position_embeddings, config.d_model));
    Bart::load(config, vb, "Marian", positions, false)
}

#[cfg(test)]
mod tests {
    use super::sinusoidal_positions;

    #[test]
    fn sinusoids_as_transformers_makes_them() {
        // MarianSinusoidalPositionalEmbedding(3, 4).create_weight() of transformers
        let want = [
            0.0,
            0.0,
            1.0,
            1.0, //
            0.841_470_96,
            0.009_999_833,
            0.540_302_3,
            0.999_95, //
            0.909_297_4,
            0.019_998_667,
            -0.416_146_84,
            0.999_8,
        ];
        let got = sinusoidal_positions(3, 4);
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        // an odd width: one more sine than cosines (row 1 of create_weight() for (3, 5))
        let want = [0.841_470_96, 0.025_116_222, 0.000_630_957_3, 0.540_302_3, 0.999_684_5];
        let got = sinusoidal_positions(3, 5);
        for (g, w) in got[5..10].iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }
}
