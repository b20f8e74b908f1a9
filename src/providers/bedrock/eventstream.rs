//! Incremental decoder for AWS's binary event-stream framing
//! (`application/vnd.amazon.eventstream`): a 12-byte prelude (total length,
//! headers length, prelude CRC32), headers, payload, and a message CRC32. Frames
//! may arrive split anywhere; both checksums are verified; sizes are bounded.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).and_then(|(_, v)| match v {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    TooLarge(usize),
    PreludeChecksum,
    MessageChecksum,
    Malformed(&'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(n) => write!(f, "event-stream frame of {n} bytes is over the limit"),
            FrameError::PreludeChecksum => write!(f, "event-stream prelude checksum mismatch"),
            FrameError::MessageChecksum => write!(f, "event-stream message checksum mismatch"),
            FrameError::Malformed(what) => write!(f, "malformed event-stream frame: {what}"),
        }
    }
}

pub const MAX_FRAME: usize = 16 * 1024 * 1024;
const PRELUDE: usize = 12;

#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes)
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        self.buffer.extend_from_slice(bytes);
        loop {
            let Some(total) = be_u32(&self.buffer, 0) else { return Ok(()) };
            let total = total as usize;
            if total > MAX_FRAME {
                return Err(FrameError::TooLarge(total));
            }
            if total < PRELUDE + 4 {
                return Err(FrameError::Malformed("frame shorter than its prelude"));
            }
            if self.buffer.len() < PRELUDE {
                return Ok(());
            }
            let prelude_crc = be_u32(&self.buffer, 8).unwrap_or_default();
            if super::crc32::hash(self.buffer.get(..8).unwrap_or_default()) != prelude_crc {
                return Err(FrameError::PreludeChecksum);
            }
            if self.buffer.len() < total {
                return Ok(());
            }
            let frame: Vec<u8> = self.buffer.drain(..total).collect();
            out.push(parse_frame(&frame)?);
        }
    }
}

fn parse_frame(frame: &[u8]) -> Result<Message, FrameError> {
    let total = frame.len();
    let headers_len = be_u32(frame, 4).ok_or(FrameError::Malformed("no headers length"))? as usize;
    let message_crc = be_u32(frame, total - 4).ok_or(FrameError::Malformed("no message checksum"))?;
    if super::crc32::hash(frame.get(..total - 4).unwrap_or_default()) != message_crc {
        return Err(FrameError::MessageChecksum);
    }
    let headers_end = PRELUDE
        .checked_add(headers_len)
        .filter(|&end| end <= total - 4)
        .ok_or(FrameError::Malformed("headers overrun"))?;
    let headers = parse_headers(frame.get(PRELUDE..headers_end).unwrap_or_default())?;
    let payload = frame.get(headers_end..total - 4).unwrap_or_default().to_vec();
    Ok(Message { headers, payload })
}

fn parse_headers(mut bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut out = Vec::new();
    let take = |bytes: &mut &[u8], n: usize| -> Result<Vec<u8>, FrameError> {
        if bytes.len() < n {
            return Err(FrameError::Malformed("header overrun"));
        }
        let (head, tail) = bytes.split_at(n);
        *bytes = tail;
        Ok(head.to_vec())
    };
    while !bytes.is_empty() {
        let name_len = take(&mut bytes, 1)?[0] as usize;
        let name = String::from_utf8(take(&mut bytes, name_len)?).map_err(|_| FrameError::Malformed("header name"))?;
        let kind = take(&mut bytes, 1)?[0];
        let fixed = |bytes: &mut &[u8], n: usize| -> Result<[u8; 8], FrameError> {
            let v = take(bytes, n)?;
            let mut buf = [0u8; 8];
            buf[8 - n..].copy_from_slice(&v);
            Ok(buf)
        };
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(take(&mut bytes, 1)?[0] as i8),
            3 => HeaderValue::Short(i64::from_be_bytes(fixed(&mut bytes, 2)?) as i16),
            4 => HeaderValue::Int(i64::from_be_bytes(fixed(&mut bytes, 4)?) as i32),
            5 => HeaderValue::Long(i64::from_be_bytes(fixed(&mut bytes, 8)?)),
            6 | 7 => {
                let len = u16::from_be_bytes([take(&mut bytes, 1)?[0], take(&mut bytes, 1)?[0]]) as usize;
                let data = take(&mut bytes, len)?;
                if kind == 6 {
                    HeaderValue::Bytes(data)
                } else {
                    HeaderValue::String(String::from_utf8(data).map_err(|_| FrameError::Malformed("header string"))?)
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(fixed(&mut bytes, 8)?)),
            9 => {
                let data = take(&mut bytes, 16)?;
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(&data);
                HeaderValue::Uuid(uuid)
            }
            _ => return Err(FrameError::Malformed("unknown header type")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Encodes a frame with string headers (tests and the mock's counterpart).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = PRELUDE + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(&super::crc32::hash(&out).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.extend_from_slice(&super::crc32::hash(&out).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<u8> {
        let mut bytes =
            encode(&[(":event-type", "messageStart"), (":message-type", "event")], br#"{"role":"assistant"}"#);
        bytes.extend(encode(
            &[(":event-type", "contentBlockDelta"), (":message-type", "event")],
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        ));
        bytes
    }

    fn decode(pieces: &[&[u8]]) -> Result<Vec<Message>, FrameError> {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.feed(piece, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn frames_decode_identically_for_every_split() {
        let bytes = frames();
        let whole = decode(&[&bytes]).unwrap();
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].header(":event-type"), Some("messageStart"));
        assert_eq!(whole[1].payload, br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#);
        for cut in 0..=bytes.len() {
            assert_eq!(decode(&[&bytes[..cut], &bytes[cut..]]).unwrap(), whole, "split at {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode(&singles).unwrap(), whole);
    }

    #[test]
    fn corrupted_frames_are_errors_not_panics() {
        let mut bytes = frames();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(decode(&[&bytes]).unwrap_err(), FrameError::MessageChecksum);
        let mut bytes = frames();
        bytes[2] ^= 0x01;
        assert!(decode(&[&bytes]).is_err());
        assert_eq!(
            decode(&[&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]]).unwrap_err(),
            FrameError::TooLarge(0xffff_ffff)
        );
        // Every prefix of random-ish garbage: errors or waits, never panics.
        let garbage: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        for n in 0..garbage.len() {
            let _ = decode(&[&garbage[..n]]);
        }
    }
}
