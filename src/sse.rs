//! Incremental Server-Sent Events decoder and encoder (WHATWG event-stream rules):
//! chunks may split anywhere (even inside a CRLF or a UTF-8 sequence), lines end in
//! LF, CRLF or CR, `:` lines are comments, and multi-line `data` joins with `\n`.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when the stream names its events (Anthropic does; OpenAI does not).
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// One line grew past the limit: a broken or hostile upstream, never buffered further.
    LineTooLong { limit: usize },
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseError::LineTooLong { limit } => {
                write!(f, "an event-stream line exceeded {limit} bytes")
            }
        }
    }
}

/// Default bound for a single line (1 MiB), so memory stays flat whatever the upstream sends.
pub const DEFAULT_MAX_LINE: usize = 1024 * 1024;

#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    event: Option<String>,
    data: String,
    data_lines: usize,
    /// The previous chunk ended in CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    max_line: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl SseDecoder {
    pub fn new(max_line: usize) -> Self {
        Self { line: Vec::new(), event: None, data: String::new(), data_lines: 0, after_cr: false, max_line }
    }

    /// Feeds one chunk and appends every event it completes to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = chunk.split_at(end);
            if self.line.is_empty() {
                // The whole line is in this chunk (the usual case): read it where it is.
                self.check_line_length(head.len())?;
                self.finish_line(head, out);
            } else {
                self.push_line_bytes(head)?;
                let line = std::mem::take(&mut self.line);
                self.finish_line(&line, out);
                // Reuse the allocation for the next partial line.
                self.line = line;
                self.line.clear();
            }
            let mut rest = &tail[1..];
            if tail[0] == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            chunk = rest;
        }
        self.push_line_bytes(chunk)
    }

    /// The upstream closed: a last line without its terminator still counts, and a
    /// pending event is dispatched (lenient, as browsers are not, because some
    /// providers omit the final blank line).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.finish_line(&line, out);
        }
        self.dispatch(out);
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        self.check_line_length(self.line.len() + bytes.len())?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn check_line_length(&mut self, length: usize) -> Result<(), SseError> {
        if length > self.max_line {
            self.line.clear();
            return Err(SseError::LineTooLong { limit: self.max_line });
        }
        Ok(())
    }

    fn finish_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.first() == Some(&b':') {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data_lines > 0 {
                    self.data.push('\n');
                }
                match std::str::from_utf8(value) {
                    Ok(text) => self.data.push_str(text),
                    Err(_) => self.data.push_str(&String::from_utf8_lossy(value)),
                }
                self.data_lines += 1;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry and unknown fields carry nothing the gateway needs
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.data_lines == 0 {
            self.event = None;
            return;
        }
        out.push(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data) });
        self.data_lines = 0;
    }
}

/// Encodes one event; multi-line data becomes several `data:` lines.
pub fn encode(event: Option<&str>, data: &str, out: &mut Vec<u8>) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.feed(piece, &mut out).unwrap();
        }
        decoder.finish(&mut out);
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: event.map(str::to_string), data: data.to_string() }
    }

    const OPENAI_STREAM: &str = "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}\n\n: keep-alive\n\ndata: {\"id\":\"c1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\nevent: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\rdata: line one\ndata: line two\n\ndata: [DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            ev(None, "{\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}"),
            ev(None, "{\"id\":\"c1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}"),
            ev(Some("message_stop"), "{\"type\":\"message_stop\"}"),
            ev(None, "line one\nline two"),
            ev(None, "[DONE]"),
        ]
    }

    #[test]
    fn whole_stream_decodes() {
        assert_eq!(decode_in_pieces(&[OPENAI_STREAM.as_bytes()]), expected());
    }

    #[test]
    fn every_two_way_split_decodes_the_same() {
        let bytes = OPENAI_STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(decode_in_pieces(&[a, b]), expected(), "split at byte {cut}");
        }
    }

    #[test]
    fn every_three_way_split_decodes_the_same() {
        let bytes = OPENAI_STREAM.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                assert_eq!(decode_in_pieces(&[&bytes[..i], &bytes[i..j], &bytes[j..]]), expected(), "cuts {i},{j}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_decodes_the_same() {
        let pieces: Vec<&[u8]> = OPENAI_STREAM.as_bytes().chunks(1).collect();
        assert_eq!(decode_in_pieces(&pieces), expected());
    }

    #[test]
    fn missing_final_blank_line_still_dispatches() {
        assert_eq!(decode_in_pieces(&[b"data: {\"a\":1}"]), vec![ev(None, "{\"a\":1}")]);
    }

    #[test]
    fn field_without_space_and_empty_data() {
        assert_eq!(decode_in_pieces(&[b"data:x\n\ndata\n\n"]), vec![ev(None, "x"), ev(None, "")]);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert_eq!(decode_in_pieces(&[b"event: ping\n\ndata: y\n\n"]), vec![ev(None, "y")]);
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut decoder = SseDecoder::new(16);
        let mut out = Vec::new();
        assert_eq!(decoder.feed(b"data: 0123456789abcdef", &mut out), Err(SseError::LineTooLong { limit: 16 }));
        let mut decoder = SseDecoder::new(16);
        decoder.feed(b"data: 0123", &mut out).unwrap();
        assert!(decoder.feed(b"456789abcdef", &mut out).is_err());
    }

    #[test]
    fn invalid_utf8_never_panics() {
        let out = decode_in_pieces(&[b"data: \xff\xfe\n\n"]);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn encode_round_trips() {
        let mut bytes = Vec::new();
        encode(Some("content_block_delta"), "{\"x\":1}", &mut bytes);
        encode(None, "a\nb", &mut bytes);
        assert_eq!(decode_in_pieces(&[&bytes]), vec![ev(Some("content_block_delta"), "{\"x\":1}"), ev(None, "a\nb")]);
    }
}
