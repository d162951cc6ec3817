//! The model side of beam search (`generation::Beams`): one cache per beam, each stepped alone
//! (the decoders run one sequence per forward pass), reordered after each step by moving caches
//! and copying a kept beam's rows into the caches of beams nobody continues, on the device.

use super::{DecoderModel, EncoderDecoderCache, EncoderDecoderModel, KvCache};
use crate::generation::Beams;
use crate::{Error, Result, Tensor};

/// Beams of a decoder-only model over its `KvCache`.
pub struct DecoderBeams<'a> {
    model: &'a dyn DecoderModel,
    caches: Vec<KvCache>,
    /// Caches of dropped beams, kept for the next copies.
    spare: Vec<KvCache>,
}

impl<'a> DecoderBeams<'a> {
    /// Caches of `max_len` tokens (prompt + new ones); beam 0's now, the others at the first reorder.
    pub fn new(model: &'a dyn DecoderModel, max_len: usize) -> Result<DecoderBeams<'a>> {
        Ok(DecoderBeams { model, caches: vec![model.new_cache(max_len)?], spare: Vec::new() })
    }
}

impl Beams for DecoderBeams<'_> {
    fn step(&mut self, beam: usize, ids: &[u32]) -> Result<Tensor> {
        let cache = self.caches.get_mut(beam).ok_or_else(|| no_beam(beam))?;
        self.model.forward(ids, cache, false)
    }
    fn reorder(&mut self, sources: &[usize]) -> Result<()> {
        let old = std::mem::take(&mut self.caches);
        self.caches = reorder(old, &mut self.spare, sources, KvCache::empty_like, KvCache::copy_from)?;
        Ok(())
    }
}

/// Beams of an encoder-decoder model: forks of one `EncoderDecoderCache` (the cross-attention
/// keys and values shared, a self-attention cache each).
pub struct EncoderDecoderBeams<'a> {
    model: &'a dyn EncoderDecoderModel,
    caches: Vec<EncoderDecoderCache>,
    spare: Vec<EncoderDecoderCache>,
}

impl<'a> EncoderDecoderBeams<'a> {
    /// From the cache of the encoded input (empty or not: beam 0 continues it).
    pub fn new(model: &'a dyn EncoderDecoderModel, cache: EncoderDecoderCache) -> EncoderDecoderBeams<'a> {
        EncoderDecoderBeams { model, caches: vec![cache], spare: Vec::new() }
    }
    /// Gives back beam 0's cache (to reuse the cross-attention keys and values).
    pub fn into_cache(mut self) -> Option<EncoderDecoderCache> {
        if self.caches.is_empty() { self.spare.pop() } else { Some(self.caches.swap_remove(0)) }
    }
}

impl Beams for EncoderDecoderBeams<'_> {
    fn step(&mut self, beam: usize, ids: &[u32]) -> Result<Tensor> {
        let cache = self.caches.get_mut(beam).ok_or_else(|| no_beam(beam))?;
        self.model.decode(ids, cache, false)
    }
    fn reorder(&mut self, sources: &[usize]) -> Result<()> {
        let old = std::mem::take(&mut self.caches);
        self.caches = reorder(old, &mut self.spare, sources, EncoderDecoderCache::fork, EncoderDecoderCache::copy_from)?;
        Ok(())
    }
}

fn no_beam(beam: usize) -> Error {
    Error::Input(format!("beam search: beam {beam} has no cache (steps of beams 1.. come after a reorder)"))
}

/// New beam i = old beam `sources[i]`: the first beam continuing an old one takes its cache as
/// it is; each further one gets a copy, into a dropped beam's cache (or a new one).
fn reorder<C>(
    old: Vec<C>,
    spare: &mut Vec<C>,
    sources: &[usize],
    new_like: fn(&C) -> Result<C>,
    copy: fn(&mut C, &C) -> Result<()>,
) -> Result<Vec<C>> {
    if let Some(&bad) = sources.iter().find(|&&s| s >= old.len()) {
        return Err(Error::Input(format!("beam search: reorder from beam {bad} of {}", old.len())));
    }
    let mut old: Vec<Option<C>> = old.into_iter().map(Some).collect();
    let mut first_user: Vec<Option<usize>> = vec![None; old.len()];
    let mut out: Vec<Option<C>> = Vec::with_capacity(sources.len());
    for (i, &s) in sources.iter().enumerate() {
        if first_user[s].is_none() {
            first_user[s] = Some(i);
            out.push(old[s].take());
        } else {
            out.push(None);
        }
    }
    spare.extend(old.into_iter().flatten());
    for (i, &s) in sources.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let from = first_user[s].and_then(|f| out[f].as_ref()).ok_or_else(|| Error::Input("beam search: reorder lost a cache".into()))?;
        let mut cache = match spare.pop() {
            Some(c) => c,
            None => new_like(from)?,
        };
        copy(&mut cache, from)?;
        out[i] = Some(cache);
    }
    Ok(out.into_iter().flatten().collect())
}
