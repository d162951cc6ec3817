//! A JPEG decoder whose pixels equal libjpeg-turbo's with the settings Pillow decodes with
//! (integer "islow" IDCT, triangle-filter ("fancy") chroma upsampling, fixed-point YCbCr to RGB),
//! so that vision models see the same pixels natively as under Python's transformers. Written
//! from the JPEG specification (ITU T.81) and libjpeg's documented arithmetic.
//!
//! Handles Huffman-coded 8-bit baseline/extended sequential and progressive JPEGs with 1, 3 or 4
//! components; anything else returns `Ok(None)` so the caller can fall back to another decoder.

use super::RawImage;
use crate::{Error, Result};

fn bad(msg: impl Into<String>) -> Error {
    Error::Input(format!("cannot decode the JPEG image: {}", msg.into()))
}

/// Zigzag position -> natural (row-major) position, with 16 extra entries so that a corrupt run
/// past the last coefficient lands on it, as libjpeg's table does, instead of out of bounds.
const NATURAL: [usize; 80] = {
    let zz: [usize; 64] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49,
        56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];
    let mut t = [63usize; 80];
    let mut i = 0;
    while i < 64 {
        t[i] = zz[i];
        i += 1;
    }
    t
};

/// Most coefficients kept in memory (two bytes each); larger (or oddly padded) images go to the
/// streaming fallback decoder instead.
const MAX_COEFFICIENTS: u64 = 400_000_000;
/// Most scans in a file: progressive files have about ten; more is a crafted file.
const MAX_SCANS: usize = 1000;

#[derive(Clone, Default)]
struct Huffman {
    /// For codes of up to LUT_BITS bits: (length, value) indexed by the next LUT_BITS bits.
    lut: Vec<(u8, u8)>,
    /// For longer codes: per length, the largest code (-1 when none) and the offset of its values.
    maxcode: [i32; 18],
    valoffset: [i32; 17],
    values: Vec<u8>,
}

const LUT_BITS: u32 = 9;

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Huffman> {
        let mut h = Huffman { lut: vec![(0, 0); 1 << LUT_BITS], maxcode: [-1; 18], valoffset: [0; 17], values };
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as usize;
            h.valoffset[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                if code >= (1 << len) {
                    return Err(bad("bad Huffman table"));
                }
                if len <= LUT_BITS {
                    let shift = LUT_BITS - len;
                    for fill in 0..(1u32 << shift) {
                        h.lut[((code << shift) | fill) as usize] = (len as u8, h.values[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                h.maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX; // sentinel, never reached: lengths stop at 16
        Ok(h)
    }
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    nbits: u32,
    /// Position of the marker that ended the entropy-coded data; zeros are read past it, as
    /// libjpeg does (a scan cut short decodes as zeros rather than failing).
    marker_at: Option<usize>,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Bits { data, pos, acc: 0, nbits: 0, marker_at: None }
    }

    fn fill(&mut self) {
        while self.nbits <= 56 {
            let mut byte = 0u8;
            if self.marker_at.is_none() {
                match self.data.get(self.pos) {
                    None => self.marker_at = Some(self.pos),
                    Some(&0xFF) => {
                        // FF fill bytes may precede a marker; FF 00 is a stuffed FF data byte.
                        let mut p = self.pos + 1;
                        while self.data.get(p) == Some(&0xFF) {
                            p += 1;
                        }
                        if self.data.get(p) == Some(&0) {
                            byte = 0xFF;
                            self.pos = p + 1;
                        } else {
                            self.marker_at = Some(p - 1);
                        }
                    }
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                }
            }
            self.acc |= (byte as u64) << (56 - self.nbits);
            self.nbits += 8;
        }
    }

    fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.nbits < n {
            self.fill();
        }
        let v = (self.acc >> (64 - n)) as u32;
        self.acc <<= n;
        self.nbits -= n;
        v
    }

    fn bit(&mut self) -> bool {
        self.bits(1) == 1
    }

    /// Reads `n` bits as a signed value (T.81's EXTEND).
    fn signed(&mut self, n: u32) -> i32 {
        if n == 0 {
            return 0;
        }
        let v = self.bits(n) as i32;
        if v < (1 << (n - 1)) { v - (1 << n) + 1 } else { v }
    }

    fn decode(&mut self, h: &Huffman) -> Result<u8> {
        if self.nbits < 16 {
            self.fill();
        }
        let (len, value) = h.lut[(self.acc >> (64 - LUT_BITS)) as usize];
        if len > 0 {
            self.acc <<= len;
            self.nbits -= len as u32;
            return Ok(value);
        }
        for len in LUT_BITS + 1..=16 {
            let code = (self.acc >> (64 - len)) as i32;
            if code <= h.maxcode[len as usize] {
                self.acc <<= len;
                self.nbits -= len;
                let i = (h.valoffset[len as usize] + code) as usize;
                return h.values.get(i).copied().ok_or_else(|| bad("bad Huffman code"));
            }
        }
        Err(bad("bad Huffman code"))
    }

    /// At a restart interval's end: drops the leftover bits and steps over the RSTn marker.
    fn restart(&mut self) {
        self.acc = 0;
        self.nbits = 0;
        let start = self.marker_at.unwrap_or(self.pos);
        // Skip anything before the marker (garbage, which libjpeg also skips).
        let p = next_marker(self.data, start, true);
        if p + 1 < self.data.len() && (0xD0..=0xD7).contains(&self.data[p + 1]) {
            self.pos = p + 2;
            self.marker_at = None;
        } else {
            // Not a restart marker: leave it for the marker reader; the rest of the scan is zeros.
            self.pos = p;
            self.marker_at = Some(p);
        }
    }

    /// Where the entropy-coded data ends (the next marker).
    fn end(&self) -> usize {
        if let Some(p) = self.marker_at {
            return p;
        }
        next_marker(self.data, self.pos, false)
    }
}

/// The position of the first marker at or after `from` (the file's end if none): an FF not
/// followed by a stuffing 00 or a fill FF, and, unless `rst`, not a restart marker either.
fn next_marker(data: &[u8], from: usize, rst: bool) -> usize {
    let mut p = from;
    while p + 1 < data.len() {
        if data[p] == 0xFF {
            let next = data[p + 1];
            if next != 0x00 && next != 0xFF && (rst || !(0xD0..=0xD7).contains(&next)) {
                return p;
            }
        }
        p += 1;
    }
    p
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// The quantization table, latched when the component's first scan starts (as libjpeg does).
    quant: Option<[u16; 64]>,
    /// Blocks per row and rows of blocks, padded to whole MCUs.
    bw: usize,
    bh: usize,
    /// Blocks actually covering the component's samples (what a single-component scan codes).
    cw: usize,
    ch: usize,
    /// Samples covering the image: ceil(width * h / hmax) by ceil(height * v / vmax).
    sw: usize,
    sh: usize,
    coefs: Vec<i16>,
    dc_pred: i32,
}

struct Frame {
    width: usize,
    height: usize,
    progressive: bool,
    comps: Vec<Component>,
    hmax: usize,
    vmax: usize,
    mcux: usize,
    mcuy: usize,
}

struct Scan {
    comps: Vec<usize>,
    dc_tables: Vec<usize>,
    ac_tables: Vec<usize>,
    ss: usize,
    se: usize,
    ah: u32,
    al: u32,
}

fn u16_at(d: &[u8], p: usize) -> Result<usize> {
    match (d.get(p), d.get(p + 1)) {
        (Some(&a), Some(&b)) => Ok(((a as usize) << 8) | b as usize),
        _ => Err(bad("the file ends inside a header")),
    }
}

/// Decodes a JPEG as Pillow (libjpeg-turbo) would, then as Pillow's `convert("RGB")` for CMYK:
/// grayscale (1 channel) or RGB (3). `Ok(None)` when the file uses something not handled here.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Option<RawImage>> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err(bad("no start-of-image marker"));
    }
    let mut qt: [Option<[u16; 64]>; 4] = [None; 4];
    let mut dc: [Option<Huffman>; 4] = Default::default();
    let mut ac: [Option<Huffman>; 4] = Default::default();
    let mut frame: Option<Frame> = None;
    let mut restart_interval = 0usize;
    let mut jfif = false;
    let mut adobe: Option<u8> = None;
    let mut scans = 0usize;
    let mut pos = 2;
    loop {
        // Find the next marker, skipping fill bytes and (as libjpeg does) stray garbage.
        while pos < bytes.len() && bytes[pos] != 0xFF {
            pos += 1;
        }
        while pos < bytes.len() && bytes[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return Err(bad("no end-of-image marker"));
        };
        pos += 1;
        match marker {
            0xD9 => break,
            0xD0..=0xD7 | 0x01 | 0x00 => continue,
            _ => {}
        }
        let len = u16_at(bytes, pos)?;
        if len < 2 || pos + len > bytes.len() {
            return Err(bad("a segment runs past the end of the file"));
        }
        let seg = &bytes[pos + 2..pos + len];
        pos += len;
        match marker {
            0xC0..=0xC2 => {
                if frame.is_some() {
                    return Err(bad("two frame headers"));
                }
                match read_frame(seg, marker == 0xC2, max_pixels)? {
                    Some(f) => frame = Some(f),
                    None => return Ok(None),
                }
            }
            // Lossless, arithmetic-coded and hierarchical frames.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(None),
            0xC4 => {
                let mut p = 0;
                while p < seg.len() {
                    let tc = seg[p] >> 4;
                    let th = (seg[p] & 15) as usize;
                    let counts: [u8; 16] = seg.get(p + 1..p + 17).ok_or_else(|| bad("short Huffman table"))?.try_into().unwrap_or([0; 16]);
                    let n: usize = counts.iter().map(|&c| c as usize).sum();
                    let values = seg.get(p + 17..p + 17 + n).ok_or_else(|| bad("short Huffman table"))?.to_vec();
                    if th > 3 || tc > 1 || n > 256 {
                        return Err(bad("bad Huffman table"));
                    }
                    let table = Some(Huffman::new(&counts, values)?);
                    if tc == 0 {
                        dc[th] = table
                    } else {
                        ac[th] = table
                    }
                    p += 17 + n;
                }
            }
            0xDB => {
                let mut p = 0;
                while p < seg.len() {
                    let (pq, tq) = (seg[p] >> 4, (seg[p] & 15) as usize);
                    if tq > 3 || pq > 1 {
                        return Err(bad("bad quantization table"));
                    }
                    let size = if pq == 0 { 64 } else { 128 };
                    let raw = seg.get(p + 1..p + 1 + size).ok_or_else(|| bad("short quantization table"))?;
                    let mut table = [0u16; 64];
                    for (k, slot) in NATURAL[..64].iter().enumerate() {
                        table[*slot] = if pq == 0 { raw[k] as u16 } else { ((raw[2 * k] as u16) << 8) | raw[2 * k + 1] as u16 };
                    }
                    qt[tq] = Some(table);
                    p += 1 + size;
                }
            }
            0xDD => restart_interval = u16_at(seg, 0)?,
            0xE0 => jfif |= seg.starts_with(b"JFIF\0"),
            0xEE if seg.len() >= 12 && seg.starts_with(b"Adobe") => adobe = Some(seg[11]),
            0xDA => {
                let f = frame.as_mut().ok_or_else(|| bad("a scan before the frame header"))?;
                scans += 1;
                if scans > MAX_SCANS {
                    return Err(bad("too many scans"));
                }
                let scan = read_scan(seg, f)?;
                for &c in &scan.comps {
                    let comp = &mut f.comps[c];
                    if comp.quant.is_none() {
                        comp.quant = Some(qt[comp.tq].ok_or_else(|| bad("a component's quantization table is missing"))?);
                    }
                }
                let mut bits = Bits::new(bytes, pos);
                decode_scan(f, &scan, &dc, &ac, restart_interval, &mut bits)?;
                pos = bits.end();
            }
            _ => {} // APPn, COM and others carry nothing needed here
        }
    }
    let Some(f) = frame else { return Err(bad("no frame header")) };
    if scans == 0 {
        return Err(bad("no scan"));
    }
    Ok(Some(output(f, jfif, adobe)?))
}

fn read_frame(seg: &[u8], progressive: bool, max_pixels: u64) -> Result<Option<Frame>> {
    if seg.len() < 6 {
        return Err(bad("short frame header"));
    }
    if seg[0] != 8 {
        return Ok(None); // 12-bit samples
    }
    let height = u16_at(seg, 1)?;
    let width = u16_at(seg, 3)?;
    let n = seg[5] as usize;
    if height == 0 {
        return Ok(None); // height given later by a DNL marker
    }
    if width == 0 {
        return Err(bad("zero width"));
    }
    if width as u64 * height as u64 > max_pixels {
        return Err(bad(format!("{width}x{height} is more than the {max_pixels} pixels accepted")));
    }
    if !matches!(n, 1 | 3 | 4) {
        return Ok(None);
    }
    if seg.len() < 6 + 3 * n {
        return Err(bad("short frame header"));
    }
    let mut comps = Vec::new();
    for i in 0..n {
        let c = &seg[6 + 3 * i..9 + 3 * i];
        let (h, v, tq) = ((c[1] >> 4) as usize, (c[1] & 15) as usize, c[2] as usize);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
            return Err(bad("bad component parameters"));
        }
        comps.push(Component { id: c[0], h, v, tq, quant: None, bw: 0, bh: 0, cw: 0, ch: 0, sw: 0, sh: 0, coefs: Vec::new(), dc_pred: 0 });
    }
    if n == 1 {
        // A single component is never interleaved: its own sampling factors don't matter.
        comps[0].h = 1;
        comps[0].v = 1;
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    // Only the ratios libjpeg upsamples with a triangle filter (or not at all) are handled.
    if comps.iter().any(|c| !matches!((hmax / c.h, vmax / c.v), (1, 1) | (2, 1) | (2, 2)) || hmax % c.h != 0 || vmax % c.v != 0) {
        return Ok(None);
    }
    let mcux = width.div_ceil(8 * hmax);
    let mcuy = height.div_ceil(8 * vmax);
    let mut total = 0u64;
    for c in &mut comps {
        c.bw = mcux * c.h;
        c.bh = mcuy * c.v;
        c.sw = (width * c.h).div_ceil(hmax);
        c.sh = (height * c.v).div_ceil(vmax);
        c.cw = c.sw.div_ceil(8);
        c.ch = c.sh.div_ceil(8);
        total += (c.bw * c.bh * 64) as u64;
    }
    if total > MAX_COEFFICIENTS {
        return Ok(None);
    }
    for c in &mut comps {
        c.coefs = vec![0; c.bw * c.bh * 64];
    }
    Ok(Some(Frame { width, height, progressive, comps, hmax, vmax, mcux, mcuy }))
}

fn read_scan(seg: &[u8], f: &Frame) -> Result<Scan> {
    let n = *seg.first().ok_or_else(|| bad("short scan header"))? as usize;
    if n == 0 || n > 4 || seg.len() < 4 + 2 * n {
        return Err(bad("bad scan header"));
    }
    let mut scan = Scan { comps: vec![], dc_tables: vec![], ac_tables: vec![], ss: 0, se: 0, ah: 0, al: 0 };
    for i in 0..n {
        let id = seg[1 + 2 * i];
        let c = f.comps.iter().position(|c| c.id == id).ok_or_else(|| bad("a scan names an unknown component"))?;
        if scan.comps.contains(&c) {
            return Err(bad("a scan names a component twice"));
        }
        scan.comps.push(c);
        scan.dc_tables.push((seg[2 + 2 * i] >> 4) as usize & 3);
        scan.ac_tables.push((seg[2 + 2 * i] & 15) as usize & 3);
    }
    let p = 1 + 2 * n;
    scan.ss = seg[p] as usize;
    scan.se = seg[p + 1] as usize;
    scan.ah = (seg[p + 2] >> 4) as u32;
    scan.al = (seg[p + 2] & 15) as u32;
    if n > 1 {
        let blocks: usize = scan.comps.iter().map(|&c| f.comps[c].h * f.comps[c].v).sum();
        if blocks > 10 {
            return Err(bad("too many blocks in an MCU"));
        }
    }
    if f.progressive {
        let ok = if scan.ss == 0 { scan.se == 0 } else { scan.se >= scan.ss && scan.se <= 63 && n == 1 };
        if !ok || scan.al > 13 || scan.ah > 13 || (scan.ah != 0 && scan.ah != scan.al + 1) {
            return Err(bad("bad progressive scan parameters"));
        }
    } else {
        // Sequential: the whole spectrum (libjpeg ignores the fields).
        scan.ss = 0;
        scan.se = 63;
        scan.ah = 0;
        scan.al = 0;
    }
    Ok(scan)
}

fn table(tables: &[Option<Huffman>; 4], i: usize) -> Result<&Huffman> {
    tables[i].as_ref().ok_or_else(|| bad("a scan uses a missing Huffman table"))
}

fn decode_scan(
    f: &mut Frame,
    scan: &Scan,
    dc: &[Option<Huffman>; 4],
    ac: &[Option<Huffman>; 4],
    restart_interval: usize,
    bits: &mut Bits,
) -> Result<()> {
    let progressive = f.progressive;
    // Progressive DC refinement reads raw bits; DC-only scans have no AC table.
    let needs_dc = scan.ss == 0 && (!progressive || scan.ah == 0);
    let needs_ac = scan.se > 0;
    let mut dct = Vec::new();
    let mut act = Vec::new();
    for i in 0..scan.comps.len() {
        dct.push(if needs_dc { Some(table(dc, scan.dc_tables[i])?) } else { None });
        act.push(if needs_ac { Some(table(ac, scan.ac_tables[i])?) } else { None });
    }
    for c in &mut f.comps {
        c.dc_pred = 0;
    }
    let mut eobrun = 0u32;
    // The blocks in coding order: an MCU's blocks when interleaved, else one block at a time.
    let single = scan.comps.len() == 1;
    let (units_x, units_y) = if single {
        let c = &f.comps[scan.comps[0]];
        (c.cw, c.ch)
    } else {
        (f.mcux, f.mcuy)
    };
    let total = units_x * units_y;
    for unit in 0..total {
        if restart_interval > 0 && unit > 0 && unit % restart_interval == 0 {
            bits.restart();
            for c in &mut f.comps {
                c.dc_pred = 0;
            }
            eobrun = 0;
        }
        let (ux, uy) = (unit % units_x, unit / units_x);
        for (i, &ci) in scan.comps.iter().enumerate() {
            let (h, v) = if single { (1, 1) } else { (f.comps[ci].h, f.comps[ci].v) };
            for by in 0..v {
                for bx in 0..h {
                    let comp = &mut f.comps[ci];
                    let (x, y) = (ux * h + bx, uy * v + by);
                    let start = (y * comp.bw + x) * 64;
                    let block = &mut comp.coefs[start..start + 64];
                    if !progressive {
                        decode_block(bits, block, &mut comp.dc_pred, dct[i], act[i])?;
                    } else if scan.ss == 0 {
                        if scan.ah == 0 {
                            let Some(t) = dct[i] else { return Err(bad("missing DC table")) };
                            let s = bits.decode(t)? as u32;
                            if s > 16 {
                                return Err(bad("bad DC coefficient"));
                            }
                            comp.dc_pred = comp.dc_pred.wrapping_add(bits.signed(s));
                            block[0] = (comp.dc_pred << scan.al) as i16;
                        } else if bits.bit() {
                            block[0] |= (1 << scan.al) as i16;
                        }
                    } else if scan.ah == 0 {
                        let Some(t) = act[i] else { return Err(bad("missing AC table")) };
                        ac_first(bits, block, t, scan, &mut eobrun)?;
                    } else {
                        let Some(t) = act[i] else { return Err(bad("missing AC table")) };
                        ac_refine(bits, block, t, scan, &mut eobrun)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn decode_block(bits: &mut Bits, block: &mut [i16], pred: &mut i32, dc: Option<&Huffman>, ac: Option<&Huffman>) -> Result<()> {
    let (Some(dc), Some(ac)) = (dc, ac) else { return Err(bad("missing Huffman table")) };
    let s = bits.decode(dc)? as u32;
    if s > 16 {
        return Err(bad("bad DC coefficient"));
    }
    *pred = pred.wrapping_add(bits.signed(s));
    block[0] = *pred as i16;
    let mut k = 1;
    while k < 64 {
        let rs = bits.decode(ac)?;
        let (r, s) = ((rs >> 4) as usize, (rs & 15) as u32);
        if s != 0 {
            k += r;
            block[NATURAL[k]] = bits.signed(s) as i16;
        } else if r != 15 {
            break;
        } else {
            k += 15;
        }
        k += 1;
    }
    Ok(())
}

fn ac_first(bits: &mut Bits, block: &mut [i16], t: &Huffman, scan: &Scan, eobrun: &mut u32) -> Result<()> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = scan.ss;
    while k <= scan.se {
        let rs = bits.decode(t)?;
        let (r, s) = ((rs >> 4) as usize, (rs & 15) as u32);
        if s != 0 {
            k += r;
            let v = bits.signed(s);
            block[NATURAL[k.min(79)]] = (v << scan.al) as i16;
        } else if r == 15 {
            k += 15;
        } else {
            *eobrun = (1u32 << r) + bits.bits(r as u32) - 1;
            break;
        }
        k += 1;
    }
    Ok(())
}

fn ac_refine(bits: &mut Bits, block: &mut [i16], t: &Huffman, scan: &Scan, eobrun: &mut u32) -> Result<()> {
    let p1 = 1i16 << scan.al;
    let m1 = (-1i16) << scan.al;
    let refine = |bits: &mut Bits, coef: &mut i16| {
        if bits.bit() && (*coef & p1) == 0 {
            *coef = if *coef >= 0 { coef.wrapping_add(p1) } else { coef.wrapping_add(m1) };
        }
    };
    let mut k = scan.ss;
    if *eobrun == 0 {
        while k <= scan.se {
            let rs = bits.decode(t)?;
            let (mut r, s) = ((rs >> 4) as i32, rs & 15);
            let mut value = 0i16;
            if s != 0 {
                // s is 1 in a valid file; libjpeg reads one sign bit whatever it is.
                value = if bits.bit() { p1 } else { m1 };
            } else if r != 15 {
                *eobrun = 1u32 << r;
                if r > 0 {
                    *eobrun += bits.bits(r as u32);
                }
                break;
            }
            while k <= scan.se {
                let coef = &mut block[NATURAL[k]];
                if *coef != 0 {
                    refine(bits, coef);
                } else {
                    r -= 1;
                    if r < 0 {
                        break;
                    }
                }
                k += 1;
            }
            if value != 0 {
                block[NATURAL[k.min(79)]] = value;
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        while k <= scan.se {
            let coef = &mut block[NATURAL[k]];
            if *coef != 0 {
                refine(bits, coef);
            }
            k += 1;
        }
        *eobrun -= 1;
    }
    Ok(())
}

// libjpeg's "islow" IDCT: the Loeffler-Ligtenberg-Moschytz factorization with 13-bit
// fixed-point constants and 2 extra bits of precision between the passes.
const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;
const F0_298: i64 = 2446;
const F0_390: i64 = 3196;
const F0_541: i64 = 4433;
const F0_765: i64 = 6270;
const F0_899: i64 = 7373;
const F1_175: i64 = 9633;
const F1_501: i64 = 12299;
const F1_847: i64 = 15137;
const F1_961: i64 = 16069;
const F2_053: i64 = 16819;
const F2_562: i64 = 20995;
const F3_072: i64 = 25172;

/// One 1-D pass over 8 values (already scaled): the even and odd parts, outputs before descaling.
#[inline(always)]
fn idct_1d(s: [i64; 8]) -> [i64; 8] {
    let z1 = (s[2] + s[6]) * F0_541;
    let tmp2 = z1 - s[6] * F1_847;
    let tmp3 = z1 + s[2] * F0_765;
    let tmp0 = (s[0] + s[4]) << CONST_BITS;
    let tmp1 = (s[0] - s[4]) << CONST_BITS;
    let (t10, t13, t11, t12) = (tmp0 + tmp3, tmp0 - tmp3, tmp1 + tmp2, tmp1 - tmp2);

    let (o0, o1, o2, o3) = (s[7], s[5], s[3], s[1]);
    let z1 = o0 + o3;
    let z2 = o1 + o2;
    let z3 = o0 + o2;
    let z4 = o1 + o3;
    let z5 = (z3 + z4) * F1_175;
    let z1 = -z1 * F0_899;
    let z2 = -z2 * F2_562;
    let z3 = -z3 * F1_961 + z5;
    let z4 = -z4 * F0_390 + z5;
    let o0 = o0 * F0_298 + z1 + z3;
    let o1 = o1 * F2_053 + z2 + z4;
    let o2 = o2 * F3_072 + z2 + z3;
    let o3 = o3 * F1_501 + z1 + z4;
    [t10 + o3, t11 + o2, t12 + o1, t13 + o0, t13 - o0, t12 - o1, t11 - o2, t10 - o3]
}

/// libjpeg's output range limit after the IDCT: the value is taken modulo 1024 as a signed
/// 10-bit number, then centered and clamped (only corrupt data reaches the wraparound).
#[inline(always)]
fn limit(x: i64) -> u8 {
    let s = ((x as i32) << 22) >> 22;
    (s + 128).clamp(0, 255) as u8
}

fn idct_block(coefs: &[i16], quant: &[u16; 64], out: &mut [u8], stride: usize) {
    let mut ws = [0i64; 64];
    for col in 0..8 {
        let s: [i64; 8] = std::array::from_fn(|r| coefs[r * 8 + col] as i64 * quant[r * 8 + col] as i64);
        if s[1..].iter().all(|&v| v == 0) {
            for r in 0..8 {
                ws[r * 8 + col] = s[0] << PASS1_BITS;
            }
            continue;
        }
        let o = idct_1d(s);
        let sh = CONST_BITS - PASS1_BITS;
        for r in 0..8 {
            // Stored as libjpeg's int workspace.
            ws[r * 8 + col] = ((o[r] + (1 << (sh - 1))) >> sh) as i32 as i64;
        }
    }
    for row in 0..8 {
        let s: [i64; 8] = std::array::from_fn(|c| ws[row * 8 + c]);
        let line = &mut out[row * stride..row * stride + 8];
        if s[1..].iter().all(|&v| v == 0) {
            let sh = PASS1_BITS + 3;
            line.fill(limit((s[0] + (1 << (sh - 1))) >> sh));
            continue;
        }
        let o = idct_1d(s);
        let sh = CONST_BITS + PASS1_BITS + 3;
        for c in 0..8 {
            line[c] = limit((o[c] + (1 << (sh - 1))) >> sh);
        }
    }
}

/// The component's samples (IDCT of every block), `bw * 8` wide.
fn component_samples(c: &Component) -> Vec<u8> {
    let stride = c.bw * 8;
    let mut out = vec![0u8; stride * c.bh * 8];
    let quant = c.quant.unwrap_or([0; 64]);
    for by in 0..c.bh {
        for bx in 0..c.bw {
            let start = (by * c.bw + bx) * 64;
            idct_block(&c.coefs[start..start + 64], &quant, &mut out[by * 8 * stride + bx * 8..], stride);
        }
    }
    out
}

/// Upsamples a component to `width x height` as libjpeg-turbo does by default: a triangle filter
/// for 2:1 horizontal (h2v1) and 2:1 both ways (h2v2), with libjpeg's alternating rounding
/// biases; plain replication when the component is at most 2 samples wide.
fn upsample(c: &Component, samples: &[u8], hr: usize, vr: usize, width: usize, height: usize) -> Vec<u8> {
    let stride = c.bw * 8;
    let (sw, sh) = (c.sw, c.sh);
    let mut out = vec![0u8; width * height];
    let row = |y: usize| &samples[y * stride..y * stride + stride];
    if hr == 1 && vr == 1 {
        for y in 0..height {
            out[y * width..(y + 1) * width].copy_from_slice(&row(y)[..width]);
        }
        return out;
    }
    let fancy = sw > 2;
    let mut line = vec![0u8; 2 * sw.max(1)];
    for y in 0..height {
        let src_y = y / vr;
        if !fancy {
            let r = row(src_y);
            for x in 0..width {
                out[y * width + x] = r[x / hr];
            }
            continue;
        }
        if vr == 1 {
            let r = row(src_y);
            line[0] = r[0];
            line[1] = ((r[0] as u32 * 3 + r[1] as u32 + 2) >> 2) as u8;
            for i in 1..sw - 1 {
                let v = r[i] as u32 * 3;
                line[2 * i] = ((v + r[i - 1] as u32 + 1) >> 2) as u8;
                line[2 * i + 1] = ((v + r[i + 1] as u32 + 2) >> 2) as u8;
            }
            let n = sw - 1;
            line[2 * n] = ((r[n] as u32 * 3 + r[n - 1] as u32 + 1) >> 2) as u8;
            line[2 * n + 1] = r[n];
        } else {
            // The nearer input row weighs 3, the other 1; rows past the edges repeat the edge row.
            let near = row(src_y);
            let far_y = if y % 2 == 0 { src_y.saturating_sub(1) } else { (src_y + 1).min(sh - 1) };
            let far = row(far_y);
            let col = |i: usize| near[i] as u32 * 3 + far[i] as u32;
            let (mut this, mut next) = (col(0), col(1));
            let mut last;
            line[0] = ((this * 4 + 8) >> 4) as u8;
            line[1] = ((this * 3 + next + 7) >> 4) as u8;
            for i in 1..sw - 1 {
                (last, this, next) = (this, next, col(i + 1));
                line[2 * i] = ((this * 3 + last + 8) >> 4) as u8;
                line[2 * i + 1] = ((this * 3 + next + 7) >> 4) as u8;
            }
            let n = sw - 1;
            (last, this) = (this, next);
            line[2 * n] = ((this * 3 + last + 8) >> 4) as u8;
            line[2 * n + 1] = ((this * 4 + 7) >> 4) as u8;
        }
        out[y * width..(y + 1) * width].copy_from_slice(&line[..width]);
    }
    out
}

fn output(f: Frame, jfif: bool, adobe: Option<u8>) -> Result<RawImage> {
    let (w, h) = (f.width, f.height);
    let planes: Vec<Vec<u8>> = f
        .comps
        .iter()
        .map(|c| {
            let samples = component_samples(c);
            upsample(c, &samples, f.hmax / c.h, f.vmax / c.v, w, h)
        })
        .collect();
    if planes.len() == 1 {
        return RawImage::new(w, h, 1, planes.into_iter().next().unwrap_or_default());
    }
    let ids: Vec<u8> = f.comps.iter().map(|c| c.id).collect();
    // Which color space the components are in, decided as libjpeg decides it.
    let ycc = if planes.len() == 3 {
        if jfif {
            true
        } else if let Some(t) = adobe {
            t != 0
        } else {
            ids != [b'R', b'G', b'B']
        }
    } else {
        matches!(adobe, Some(t) if t != 0)
    };
    let tables = ColorTables::new();
    let mut data = vec![0u8; w * h * 3];
    for i in 0..w * h {
        let px = &mut data[i * 3..i * 3 + 3];
        let (a, b, c) = (planes[0][i], planes[1][i], planes[2][i]);
        let rgb = if ycc { tables.rgb(a, b, c) } else { [a, b, c] };
        if planes.len() == 3 {
            px.copy_from_slice(&rgb);
        } else {
            // YCCK becomes CMYK as libjpeg does it (C = 255 - R, ...); Pillow reads CMYK JPEGs as
            // inverted (Adobe's convention), then converts to RGB with its own formula.
            let cmyk = if ycc { [255 - rgb[0], 255 - rgb[1], 255 - rgb[2], planes[3][i]] } else { [a, b, c, planes[3][i]] };
            let nk = cmyk[3] as i32; // 255 - (255 - k) after Pillow's inversion
            for ch in 0..3 {
                let ink = 255 - cmyk[ch] as i32;
                let t = ink * nk + 128;
                px[ch] = (nk - (((t >> 8) + t) >> 8)).clamp(0, 255) as u8;
            }
        }
    }
    RawImage::new(w, h, 3, data)
}

/// libjpeg's YCbCr to RGB tables: 16-bit fixed point, rounded as jdcolor.c rounds.
struct ColorTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl ColorTables {
    fn new() -> Self {
        const HALF: i32 = 1 << 15;
        let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
        let mut t = ColorTables { cr_r: [0; 256], cb_b: [0; 256], cr_g: [0; 256], cb_g: [0; 256] };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (fix(1.40200) * x + HALF) >> 16;
            t.cb_b[i] = (fix(1.77200) * x + HALF) >> 16;
            t.cr_g[i] = -fix(0.71414) * x;
            t.cb_g[i] = -fix(0.34414) * x + HALF;
        }
        t
    }

    #[inline(always)]
    fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let y = y as i32;
        let (cb, cr) = (cb as usize, cr as usize);
        [
            (y + self.cr_r[cr]).clamp(0, 255) as u8,
            (y + ((self.cb_g[cb] + self.cr_g[cr]) >> 16)).clamp(0, 255) as u8,
            (y + self.cb_b[cb]).clamp(0, 255) as u8,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/images");
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn handles_the_test_jpegs_itself() {
        // The exactness tests go through `image::decode`; this makes sure they exercise this
        // decoder rather than the fallback.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/images/jpeg");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jpg") {
                assert!(decode(&std::fs::read(&path).unwrap(), u64::MAX).unwrap().is_some(), "{path:?}");
                n += 1;
            }
        }
        assert!(n >= 20);
        for name in ["cat.jpg", "cmyk.jpg", "exif-rotated.jpg"] {
            assert!(decode(&fixture(name), u64::MAX).unwrap().is_some(), "{name}");
        }
    }

    #[test]
    fn unsupported_and_oversized_frames() {
        let jpg = fixture("jpeg/one-pixel.jpg");
        let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        // Arithmetic coding (SOF9) and 12-bit samples are left to the fallback decoder.
        let mut arith = jpg.clone();
        arith[sof + 1] = 0xC9;
        assert!(decode(&arith, u64::MAX).unwrap().is_none());
        let mut twelve = jpg.clone();
        twelve[sof + 4] = 12;
        assert!(decode(&twelve, u64::MAX).unwrap().is_none());
        // A frame larger than the pixel limit is refused before anything is allocated.
        let mut huge = jpg.clone();
        huge[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(decode(&huge, 100_000_000), Err(Error::Input(_))));
    }
}
