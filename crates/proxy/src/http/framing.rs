//! How an HTTP/1.1 message body is delimited (RFC 9112 §6) and its incremental decoding, shared
//! by request bodies from clients and response bodies from upstreams.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (0: no body).
    Length(u64),
    Chunked,
    /// Until the sender closes the connection (responses only).
    Close,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    #[error("invalid Content-Length")]
    BadLength,
    #[error("conflicting Content-Length values")]
    ConflictingLength,
    #[error("unsupported Transfer-Encoding")]
    BadTransferEncoding,
    #[error("invalid chunked encoding")]
    BadChunk,
    #[error("connection closed before the end of the body")]
    Truncated,
}

/// The framing of a message from its Transfer-Encoding and Content-Length values.
/// `te_final_chunked_only`: requests may only use chunked as the final coding (else 501/400).
pub fn from_fields<'a>(
    transfer_encoding: Option<&[u8]>,
    content_lengths: impl Iterator<Item = &'a [u8]>,
    is_request: bool,
) -> Result<Framing, FramingError> {
    if let Some(te) = transfer_encoding {
        let last = te.rsplit(|b| *b == b',').next().unwrap_or_default();
        let last = trim(last);
        return if last.eq_ignore_ascii_case(b"chunked") {
            Ok(Framing::Chunked)
        } else if is_request {
            // A request body of unknown length cannot be delimited.
            Err(FramingError::BadTransferEncoding)
        } else {
            Ok(Framing::Close)
        };
    }
    let mut found: Option<u64> = None;
    for v in content_lengths {
        // A list like "5, 5" counts as one value if all agree.
        for part in v.split(|b| *b == b',') {
            let n = parse_length(trim(part)).ok_or(FramingError::BadLength)?;
            match found {
                Some(prev) if prev != n => return Err(FramingError::ConflictingLength),
                _ => found = Some(n),
            }
        }
    }
    Ok(match found {
        Some(n) => Framing::Length(n),
        None if is_request => Framing::Length(0),
        None => Framing::Close,
    })
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    v.get(start..end).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data,
    DataEnd,
    Trailers,
}

/// What the decoder produced from the buffered input.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// Nothing decodable is buffered: read more.
    NeedMore,
    End,
}

/// Decodes a body out of a read buffer as data arrives; data comes out without copying.
#[derive(Debug, Clone)]
pub struct Decoder {
    framing: Framing,
    /// Bytes left: of the whole body (Length) or of the current chunk (Chunked).
    remaining: u64,
    chunk: Chunk,
    done: bool,
    /// Total body bytes produced so far.
    pub seen: u64,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        let remaining = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Decoder {
            framing,
            remaining,
            chunk: Chunk::Size,
            done: framing == Framing::Length(0),
            seen: 0,
        }
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Bytes still expected, when the framing says.
    pub fn remaining_exact(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(_) => Some(self.remaining),
            _ => None,
        }
    }

    /// Takes the next piece of body out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, FramingError> {
        if self.done {
            return Ok(Step::End);
        }
        match self.framing {
            Framing::Length(_) => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let take = self.remaining.min(buf.len() as u64) as usize;
                self.remaining -= take as u64;
                self.done = self.remaining == 0;
                Ok(self.data(buf.split_to(take).freeze()))
            }
            Framing::Close => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore);
                }
                Ok(self.data(buf.split().freeze()))
            }
            Framing::Chunked => loop {
                match self.chunk {
                    Chunk::Size => match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.advance(used);
                            if size == 0 {
                                self.chunk = Chunk::Trailers;
                            } else {
                                self.remaining = size;
                                self.chunk = Chunk::Data;
                            }
                        }
                        Ok(httparse::Status::Partial) => return Ok(Step::NeedMore),
                        Err(_) => return Err(FramingError::BadChunk),
                    },
                    Chunk::Data => {
                        if buf.is_empty() {
                            return Ok(Step::NeedMore);
                        }
                        let take = self.remaining.min(buf.len() as u64) as usize;
                        self.remaining -= take as u64;
                        if self.remaining == 0 {
                            self.chunk = Chunk::DataEnd;
                        }
                        return Ok(self.data(buf.split_to(take).freeze()));
                    }
                    Chunk::DataEnd => {
                        if buf.len() < 2 {
                            return Ok(Step::NeedMore);
                        }
                        if &buf[..2] != b"\r\n" {
                            return Err(FramingError::BadChunk);
                        }
                        buf.advance(2);
                        self.chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        // Trailer fields end with an empty line; they are not relayed.
                        match memchr::memmem::find(buf, b"\r\n") {
                            Some(0) => {
                                buf.advance(2);
                                self.done = true;
                                return Ok(Step::End);
                            }
                            Some(i) => buf.advance(i + 2),
                            None => return Ok(Step::NeedMore),
                        }
                    }
                }
            },
        }
    }

    /// The peer closed the connection: the end of a close-delimited body, an error otherwise.
    pub fn eof(&mut self) -> Result<Step, FramingError> {
        if self.done || self.framing == Framing::Close {
            self.done = true;
            Ok(Step::End)
        } else {
            Err(FramingError::Truncated)
        }
    }

    fn data(&mut self, b: Bytes) -> Step {
        self.seen += b.len() as u64;
        Step::Data(b)
    }
}

/// `{len:x}\r\n` without an allocation.
pub fn chunk_size_line(buf: &mut [u8; 18], len: usize) -> &[u8] {
    let mut n = len;
    let mut i = 16;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(d: &mut Decoder, input: &[u8]) -> (Vec<u8>, bool) {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match d.decode(&mut buf).unwrap() {
                Step::Data(b) => out.extend_from_slice(&b),
                Step::NeedMore => return (out, false),
                Step::End => return (out, true),
            }
        }
    }

    #[test]
    fn chunk_size_lines_are_hex() {
        let mut buf = [0u8; 18];
        for (len, line) in [
            (0, "0\r\n"),
            (1, "1\r\n"),
            (255, "ff\r\n"),
            (4096, "1000\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            assert_eq!(chunk_size_line(&mut buf, len), line.as_bytes());
        }
    }

    #[test]
    fn framing_rules() {
        let cl = |v: &'static [&'static [u8]]| v.iter().copied();
        assert_eq!(
            from_fields(Some(b"gzip, chunked"), cl(&[b"10"]), false),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            from_fields(Some(b"gzip"), cl(&[]), false),
            Ok(Framing::Close)
        );
        assert_eq!(
            from_fields(Some(b"gzip"), cl(&[]), true),
            Err(FramingError::BadTransferEncoding)
        );
        assert_eq!(
            from_fields(None, cl(&[b"5", b" 5 "]), true),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            from_fields(None, cl(&[b"5", b"6"]), true),
            Err(FramingError::ConflictingLength)
        );
        assert_eq!(
            from_fields(None, cl(&[b"-1"]), true),
            Err(FramingError::BadLength)
        );
        assert_eq!(from_fields(None, cl(&[]), true), Ok(Framing::Length(0)));
        assert_eq!(from_fields(None, cl(&[]), false), Ok(Framing::Close));
    }

    #[test]
    fn chunked_in_pieces_with_trailers() {
        let mut d = Decoder::new(Framing::Chunked);
        let (a, done) = drain(&mut d, b"4\r\nWiki\r\n5;ext=1\r\npe");
        assert_eq!(a, b"Wikipe");
        assert!(!done);
        let mut d2 = Decoder::new(Framing::Chunked);
        let (b, done) = drain(&mut d2, b"4\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n");
        assert_eq!(b, b"Wikipedia");
        assert!(done);
        assert_eq!(d2.seen, 9);
        let mut bad = Decoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"4\r\nWikiXX"[..]);
        assert!(matches!(bad.decode(&mut buf), Ok(Step::Data(_))));
        assert_eq!(bad.decode(&mut buf), Err(FramingError::BadChunk));
    }

    #[test]
    fn length_and_close() {
        let mut d = Decoder::new(Framing::Length(3));
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert_eq!(
            d.decode(&mut buf),
            Ok(Step::Data(Bytes::from_static(b"abc")))
        );
        assert_eq!(d.decode(&mut buf), Ok(Step::End));
        assert_eq!(&buf[..], b"def", "the next message stays in the buffer");
        let mut c = Decoder::new(Framing::Close);
        assert_eq!(c.eof(), Ok(Step::End));
        let mut l = Decoder::new(Framing::Length(5));
        assert_eq!(l.eof(), Err(FramingError::Truncated));
    }
}
