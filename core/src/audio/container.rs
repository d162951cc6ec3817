//! Lengths an audio file declares, checked against the bytes present before symphonia sees them.
//!
//! symphonia allocates a metadata field (an ID3v2 frame, a Vorbis comment, a FLAC picture, a RIFF
//! INFO value), an MP4 table or an MP4 descriptor at the size its header claims, up to 4 GiB, before
//! reading it. Natively that is a lazily touched page range; in wasm a failed allocation aborts the
//! page's instance (found by fuzzing). No such field can be longer than the file, so a claim that
//! runs past the bytes present marks a damaged file and is refused here. The audio data itself may
//! still be cut short (a truncated file decodes its whole frames): only the metadata and index
//! structures are held to the file's length.
//!
//! What is not covered: allocations a codec sizes from its own setup (a Vorbis codebook's entries
//! times dimensions) are bounded by symphonia alone.

use crate::{Error, Result};

/// How far symphonia's probe scans for a format marker (and reads ID3v2 tags on the way).
const PROBE_WINDOW: usize = 1 << 20;

/// Refuses a file any of whose metadata or index lengths runs past its end. symphonia's probe
/// finds a format by its marker anywhere in the first MiB (junk before it is skipped), so each
/// format's structures are checked from its marker's first occurrence there.
pub(super) fn check_declared_lengths(bytes: &[u8]) -> Result<()> {
    let window = &bytes[..bytes.len().min(PROBE_WINDOW)];
    let find = |marker: &[u8]| window.windows(marker.len()).position(|w| w == marker);
    check_id3v2_tags(window, bytes.len())?;
    if let Some(at) = find(b"RIFF").into_iter().chain(find(b"RIFX")).min() {
        check_riff_lists(&bytes[at..])?;
    }
    if let Some(at) = find(b"fLaC") {
        check_flac_metadata(bytes, at + 4)?;
    }
    if let Some(at) = find(b"OggS") {
        check_ogg_comments(&bytes[at..])?;
    }
    if let Some(at) = find(b"ftyp").filter(|&at| at >= 4) {
        check_mp4(bytes, at - 4, bytes.len(), 0)?;
    }
    Ok(())
}

fn damaged(format: &str, what: &str, claimed: u64, left: usize) -> Error {
    Error::Input(format!("the {format} file is damaged: {what} claims {claimed} bytes where {left} remain in the file"))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn syncsafe(b: &[u8]) -> usize {
    b.iter().fold(0usize, |n, &x| (n << 7) | (x & 0x7f) as usize)
}

/// Every well-formed ID3v2 tag in `window` (the probe reads one wherever it finds it): each
/// frame's size must fit in the file (`file_len` bytes).
fn check_id3v2_tags(window: &[u8], file_len: usize) -> Result<()> {
    let mut at = 0;
    while at + 10 <= window.len() {
        let header = &window[at..at + 10];
        let plausible =
            &header[..3] == b"ID3" && (2..=4).contains(&header[3]) && header[4] != 0xff && header[6..].iter().all(|&x| x < 0x80);
        if !plausible {
            at += 1;
            continue;
        }
        let (version, flags) = (header[3], header[5]);
        let end = (at + 10).saturating_add(syncsafe(&header[6..10])).min(window.len());
        let body = &window[at + 10..end];
        // Versions 2 and 3 unsynchronise the whole tag: frame headers are read from the decoded bytes.
        let decoded;
        let body = if flags & 0x80 != 0 && version < 4 {
            decoded = resynchronise(body);
            &decoded[..]
        } else {
            body
        };
        check_id3v2_frames(body, version, flags, file_len - (at + 10))?;
        at = end.max(at + 1);
    }
    Ok(())
}

fn resynchronise(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for (i, &x) in b.iter().enumerate() {
        if !(x == 0 && i > 0 && b[i - 1] == 0xff) {
            out.push(x);
        }
    }
    out
}

fn check_id3v2_frames(body: &[u8], version: u8, flags: u8, file_left: usize) -> Result<()> {
    let mut at = 0usize;
    if flags & 0x40 != 0 {
        // The extended header: v2.3 gives its size without the size field, v2.4 with it.
        let Some(size) = body.get(..4) else { return Ok(()) };
        at = match version {
            3 => 4 + u32::from_be_bytes(size.try_into().expect("4 bytes")) as usize,
            4 => syncsafe(size),
            _ => return Ok(()),
        };
    }
    let header_len = if version == 2 { 6 } else { 10 };
    while at + header_len <= body.len() {
        let frame = &body[at..at + header_len];
        if frame[0] == 0 {
            break; // padding
        }
        let size = match version {
            2 => u32::from_be_bytes([0, frame[3], frame[4], frame[5]]) as usize,
            3 => u32::from_be_bytes(frame[4..8].try_into().expect("4 bytes")) as usize,
            _ => syncsafe(&frame[4..8]),
        };
        let left = file_left.saturating_sub(at + header_len);
        if size > left {
            let id = String::from_utf8_lossy(&frame[..header_len - if version == 2 { 3 } else { 6 }]).into_owned();
            return Err(damaged("audio", &format!("its ID3v2 tag's {id} frame"), size as u64, left));
        }
        at += header_len + size;
    }
    Ok(())
}

/// A RIFF file's LIST chunks: each sub-chunk (an INFO value) must fit in the file.
fn check_riff_lists(bytes: &[u8]) -> Result<()> {
    let read = |at: usize| if &bytes[..4] == b"RIFX" { be32(bytes, at) } else { le32(bytes, at) };
    let mut at = 12;
    while let (Some(id), Some(len)) = (bytes.get(at..at + 4), read(at + 4)) {
        let body = at + 8;
        if id == b"LIST" && bytes.get(body..body + 4).is_some() {
            let end = body.saturating_add(len as usize).min(bytes.len());
            let mut sub = body + 4;
            while let Some(sub_len) = read(sub + 4) {
                if sub + 8 > end {
                    break;
                }
                let left = bytes.len() - (sub + 8);
                if sub_len as usize > left {
                    let id = String::from_utf8_lossy(&bytes[sub..sub + 4]).into_owned();
                    return Err(damaged("WAV", &format!("its LIST chunk's {id} entry"), sub_len.into(), left));
                }
                sub += 8 + (sub_len as usize).next_multiple_of(2);
            }
        }
        // The data chunk may claim more than a truncated file holds: nothing after it is read.
        if id == b"data" {
            break;
        }
        at = body.saturating_add((len as usize).next_multiple_of(2));
    }
    Ok(())
}

/// A FLAC stream's metadata blocks from `at` (just after `fLaC`): the comment and picture blocks'
/// inner lengths must fit in the block.
fn check_flac_metadata(bytes: &[u8], mut at: usize) -> Result<()> {
    while let Some(header) = bytes.get(at..at + 4) {
        let (last, kind) = (header[0] & 0x80 != 0, header[0] & 0x7f);
        let len = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        let block = &bytes[(at + 4).min(bytes.len())..(at + 4 + len).min(bytes.len())];
        match kind {
            4 => check_vorbis_comments(block, "FLAC", "its comment block")?,
            6 => check_flac_picture(block)?,
            _ => {}
        }
        if last {
            break;
        }
        at += 4 + len;
    }
    Ok(())
}

/// A Vorbis comment structure (FLAC's comment block, an Ogg stream's comment packet): the vendor
/// string and each comment, little-endian lengths, within `block`.
fn check_vorbis_comments(block: &[u8], format: &str, what: &str) -> Result<()> {
    let mut at = 0usize;
    let field = |at: &mut usize, name: &str| -> Result<()> {
        let Some(n) = le32(block, *at) else { return Ok(()) };
        *at += 4;
        let left = block.len() - *at;
        if n as usize > left {
            return Err(damaged(format, &format!("{what}'s {name}"), n.into(), left));
        }
        *at += n as usize;
        Ok(())
    };
    field(&mut at, "vendor string")?;
    let Some(count) = le32(block, at) else { return Ok(()) };
    at += 4;
    for _ in 0..count {
        if at >= block.len() {
            break;
        }
        field(&mut at, "comment")?;
    }
    Ok(())
}

fn check_flac_picture(block: &[u8]) -> Result<()> {
    // Type, then the MIME type and description (each a length and its bytes), four numbers, the data.
    let mut at = 4usize;
    for (name, skip_after) in [("picture's MIME type", 0), ("picture's description", 16), ("picture's data", 0)] {
        let Some(n) = be32(block, at) else { return Ok(()) };
        at += 4;
        let left = block.len() - at;
        if n as usize > left {
            return Err(damaged("FLAC", &format!("its {name}"), n.into(), left));
        }
        at += n as usize + skip_after;
    }
    Ok(())
}

/// The first logical stream's comment packet (its second packet), Vorbis or Opus.
fn check_ogg_comments(bytes: &[u8]) -> Result<()> {
    let mut packets: Vec<Vec<u8>> = vec![Vec::new()];
    let mut serial = None;
    let mut at = 0usize;
    while packets.len() <= 2 {
        let Some(page) = bytes.get(at..at + 27) else { break };
        if &page[..4] != b"OggS" {
            break;
        }
        let segments = page[26] as usize;
        let Some(table) = bytes.get(at + 27..at + 27 + segments) else { break };
        let page_serial = le32(page, 14);
        let mut data = at + 27 + segments;
        if serial.is_none() {
            serial = page_serial;
        }
        if page_serial == serial {
            for &lace in table {
                let piece = &bytes[data.min(bytes.len())..(data + lace as usize).min(bytes.len())];
                packets.last_mut().expect("never empty").extend_from_slice(piece);
                if lace < 255 {
                    packets.push(Vec::new());
                }
                data += lace as usize;
            }
        }
        at = at + 27 + segments + table.iter().map(|&l| l as usize).sum::<usize>();
    }
    let Some(comment) = packets.get(1) else { return Ok(()) };
    if let Some(rest) = comment.strip_prefix(b"\x03vorbis").or_else(|| comment.strip_prefix(b"OpusTags")) {
        check_vorbis_comments(rest, "Ogg", "its comment packet")?;
    }
    Ok(())
}

/// Atoms that hold atoms, with the bytes before their first child.
fn children_offset(kind: &[u8], body: &[u8]) -> Option<usize> {
    match kind {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"udta" | b"edts" | b"dinf" | b"ilst" | b"mvex" | b"moof" | b"traf" => Some(0),
        // A full box (version and flags) in MP4, a plain container in QuickTime files.
        b"meta" => Some(if body.get(..4) == Some(&[0, 0, 0, 0]) { 4 } else { 0 }),
        b"stsd" => Some(8),
        // An audio sample entry: 28 bytes, 16 or 36 more for QuickTime's versions 1 and 2.
        b"mp4a" | b"alac" | b"fLaC" | b"Opus" => {
            let version = u16::from_be_bytes(body.get(8..10)?.try_into().ok()?);
            Some(28 + [0, 16, 36].get(version as usize).copied().unwrap_or(0))
        }
        _ => None,
    }
}

/// The atoms between `start` and `end` (the parent's end, clipped to the file): each atom within
/// its parent (a media data atom may be cut short), each table's entries within its atom, each
/// sample's size within the file, each esds descriptor within its atom.
fn check_mp4(bytes: &[u8], start: usize, end: usize, depth: usize) -> Result<()> {
    // symphonia reads these tables as counts of fixed-size entries.
    const TABLES: [(&[u8; 4], usize, usize); 6] =
        [(b"stco", 4, 4), (b"co64", 4, 8), (b"stsc", 4, 12), (b"stts", 4, 8), (b"ctts", 4, 8), (b"stsz", 8, 4)];
    let mut at = start;
    while at + 8 <= end && depth < 16 {
        let size32 = be32(bytes, at).expect("8 bytes present") as u64;
        let kind = &bytes[at + 4..at + 8];
        let (size, header) = match size32 {
            0 => ((end - at) as u64, 8),
            1 => match bytes.get(at + 8..at + 16) {
                Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 16),
                None => break,
            },
            n => (n, 8),
        };
        if size < header as u64 {
            break; // not an atom: symphonia stops there too
        }
        let left = end - at;
        if size > left as u64 {
            if kind == b"mdat" {
                break;
            }
            let name = String::from_utf8_lossy(kind).into_owned();
            return Err(damaged("MP4", &format!("its {name} atom"), size, left));
        }
        let atom_end = at + size as usize;
        let body = &bytes[(at + header).min(atom_end)..atom_end];
        if let Some(offset) = children_offset(kind, body) {
            check_mp4(bytes, (at + header + offset).min(atom_end), atom_end, depth + 1)?;
        }
        if let Some(&(name, count_at, entry)) = TABLES.iter().find(|t| t.0 == kind) {
            let count = be32(body, count_at).unwrap_or(0) as u64;
            // stsz lists sizes only when its fixed size is 0.
            let listed = if kind == b"stsz" && be32(body, 4).unwrap_or(0) != 0 { 0 } else { count };
            let room = body.len().saturating_sub(count_at + 4);
            let table = String::from_utf8_lossy(name).into_owned();
            if listed * entry as u64 > room as u64 {
                return Err(damaged("MP4", &format!("its {table} table"), listed * entry as u64, room));
            }
            if kind == b"stsz" {
                let fixed = be32(body, 4).unwrap_or(0);
                let sizes = body.get(count_at + 4..).unwrap_or(&[]).chunks_exact(4).take(listed as usize);
                if let Some(n) = std::iter::once(fixed).chain(sizes.map(|s| be32(s, 0).expect("4 bytes"))).max()
                    && n as usize > bytes.len()
                {
                    return Err(damaged("MP4", "a sample", n.into(), bytes.len()));
                }
            }
        }
        if kind == b"esds" {
            check_descriptors(body.get(4..).unwrap_or(&[]))?;
        }
        at = atom_end;
        if size == 0 {
            break;
        }
    }
    Ok(())
}

/// MPEG-4 descriptors (tag, a length in 7-bit groups, the body), nested: each within its parent.
fn check_descriptors(b: &[u8]) -> Result<()> {
    let mut at = 0usize;
    while at + 2 <= b.len() {
        let tag = b[at];
        let mut len = 0usize;
        let mut i = at + 1;
        for _ in 0..4 {
            let Some(&x) = b.get(i) else { return Ok(()) };
            len = (len << 7) | (x & 0x7f) as usize;
            i += 1;
            if x & 0x80 == 0 {
                break;
            }
        }
        let left = b.len() - i;
        if len > left {
            return Err(damaged("MP4", &format!("its esds descriptor {tag:#04x}"), len as u64, left));
        }
        let body = &b[i..i + len];
        // Children follow an ES descriptor's 3 bytes (more with its flags) and a decoder
        // config's 13 bytes.
        match tag {
            0x03 if len >= 3 => {
                let flags = body[2];
                let mut skip = 3 + if flags & 0x80 != 0 { 2 } else { 0 } + if flags & 0x20 != 0 { 2 } else { 0 };
                if flags & 0x40 != 0 {
                    skip += 1 + body.get(skip).copied().unwrap_or(0) as usize;
                }
                check_descriptors(body.get(skip..).unwrap_or(&[]))?;
            }
            0x04 if len >= 13 => check_descriptors(&body[13..])?,
            _ => {}
        }
        at = i + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../tests/fixtures/audio/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn refused(bytes: &[u8], words: &str) {
        let e = check_declared_lengths(bytes).unwrap_err().to_string();
        assert!(e.contains(words) && e.contains("damaged"), "{e}");
        // And through the decoder, which must say the same rather than allocate.
        let e = super::super::RawAudio::decode(bytes).unwrap_err().to_string();
        assert!(e.contains(words), "{e}");
    }

    #[test]
    fn real_files_pass() {
        for name in [
            "speech_b_44k_stereo.mp3",
            "speech_b_44k_stereo.flac",
            "speech_b_44k_stereo.m4a",
            "speech_d_22k.ogg",
            "speech_b_44k_stereo.wav",
        ] {
            check_declared_lengths(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    fn syncsafe_bytes(n: usize) -> [u8; 4] {
        [(n >> 21) as u8 & 0x7f, (n >> 14) as u8 & 0x7f, (n >> 7) as u8 & 0x7f, n as u8 & 0x7f]
    }

    #[test]
    fn an_id3v2_frame_longer_than_the_file_is_refused() {
        // The fuzzer's find: a v2.3 frame claiming 2.5 GB in front of a real MP3.
        let mp3 = fixture("speech_b_44k_stereo.mp3");
        let mut frame = b"TIT2".to_vec();
        frame.extend_from_slice(&2_556_893_706u32.to_be_bytes());
        frame.extend_from_slice(b"\0\0\0hello");
        let mut file = b"ID3\x03\0\0".to_vec();
        file.extend_from_slice(&syncsafe_bytes(frame.len()));
        file.extend_from_slice(&frame);
        file.extend_from_slice(&mp3[..4000]);
        refused(&file, "TIT2 frame claims 2556893706 bytes");
        // The same tag with an honest frame decodes.
        file[14..18].copy_from_slice(&6u32.to_be_bytes());
        check_declared_lengths(&file).unwrap();
    }

    #[test]
    fn a_flac_picture_longer_than_its_block_is_refused() {
        // The fuzzer's find: a 1.5 GB picture MIME type, its stream after 4 bytes of junk.
        let flac = fixture("speech_b_44k_stereo.flac");
        let mut picture = 3u32.to_be_bytes().to_vec();
        picture.extend_from_slice(&9u32.to_be_bytes());
        picture.extend_from_slice(b"image/png");
        picture.extend_from_slice(&0u32.to_be_bytes());
        picture.extend_from_slice(&[0; 16]);
        picture.extend_from_slice(&0xfff0_0000u32.to_be_bytes());
        // Inserted as the first block after STREAMINFO (which is not the last: its flag is clear).
        let mut file = flac[..4 + 4 + 34].to_vec();
        file.push(6);
        file.extend_from_slice(&(picture.len() as u32).to_be_bytes()[1..]);
        file.extend_from_slice(&picture);
        file.extend_from_slice(&flac[42..]);
        assert_eq!(flac[4] & 0x80, 0, "STREAMINFO is not the last block here");
        refused(&file, "picture's data claims");
        let mut junk_first = b"SIFF".to_vec();
        junk_first.extend_from_slice(&file);
        refused(&junk_first, "picture's data claims");
    }

    #[test]
    fn an_ogg_comment_longer_than_its_packet_is_refused() {
        let mut ogg = fixture("speech_d_22k.ogg");
        let at = ogg.windows(7).position(|w| w == b"\x03vorbis").unwrap();
        // The vendor string's length.
        ogg[at + 7..at + 11].copy_from_slice(&0x7000_0000u32.to_le_bytes());
        refused(&ogg, "comment packet's vendor string");
    }

    #[test]
    fn mp4_tables_and_atoms_longer_than_the_file_are_refused() {
        let m4a = fixture("speech_b_44k_stereo.m4a");
        let find = |kind: &[u8]| m4a.windows(4).position(|w| w == kind).unwrap() - 4;
        // A sample-size table whose count claims more entries than the atom holds.
        let mut file = m4a.clone();
        let stsz = find(b"stsz");
        file[stsz + 16..stsz + 20].copy_from_slice(&0x4000_0000u32.to_be_bytes());
        refused(&file, "stsz table");
        // One sample claiming more than the file.
        let mut file = m4a.clone();
        file[stsz + 20..stsz + 24].copy_from_slice(&0x9000_0000u32.to_be_bytes());
        refused(&file, "a sample claims");
        // An atom inside moov longer than moov.
        let mut file = m4a.clone();
        let hdlr = find(b"hdlr");
        file[hdlr..hdlr + 4].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
        refused(&file, "hdlr atom");
        // The media data cut short is not refused here (the decoder keeps the whole frames).
        let mdat = find(b"mdat");
        let mut file = m4a.clone();
        file[mdat..mdat + 4].copy_from_slice(&0x7fff_0000u32.to_be_bytes());
        assert!(check_mp4(&file, 0, file.len(), 0).is_ok());
    }

    #[test]
    fn a_riff_info_value_longer_than_the_file_is_refused() {
        let wav = fixture("speech_b_16k.wav");
        let mut info = b"INFO".to_vec();
        info.extend_from_slice(b"INAM");
        info.extend_from_slice(&0x9866_d40au32.to_le_bytes());
        info.extend_from_slice(b"abc\0");
        let mut file = wav[..12].to_vec();
        file.extend_from_slice(b"LIST");
        file.extend_from_slice(&(info.len() as u32).to_le_bytes());
        file.extend_from_slice(&info);
        file.extend_from_slice(&wav[12..]);
        let riff_len = (file.len() - 8) as u32;
        file[4..8].copy_from_slice(&riff_len.to_le_bytes());
        let e = check_declared_lengths(&file).unwrap_err().to_string();
        assert!(e.contains("INAM entry claims"), "{e}");
    }
}
