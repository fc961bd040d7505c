//! A multipart/form-data body as Kong's `multipart` library edits it: parts are kept with
//! their own header lines (file parts too), looked up by name, replaced in place or added as
//! simple text parts, and written back with the request's boundary.

/// One part: its header lines (without the blank line) and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    name: Option<String>,
    head: String,
    value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    boundary: String,
    parts: Vec<Part>,
}

/// The boundary of a `multipart/form-data; boundary=...` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let at = content_type.find("boundary=")?;
    let before = content_type[..at].trim_end_matches([' ', '\t']);
    if !before.ends_with(';') {
        return None;
    }
    let value = content_type[at + "boundary=".len()..]
        .split([' ', '\t', ';'])
        .next()
        .unwrap_or_default()
        .trim_matches('"');
    (!value.is_empty()).then(|| value.to_string())
}

impl Multipart {
    /// Parses a body (empty is a form without parts); `None` when it is not one.
    pub fn parse(body: &[u8], boundary: &str) -> Option<Multipart> {
        let mut form = Multipart {
            boundary: boundary.to_string(),
            parts: Vec::new(),
        };
        if body.is_empty() {
            return Some(form);
        }
        let delimiter = format!("--{boundary}");
        let next_part = format!("\r\n--{boundary}");
        let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
        loop {
            let rest = body.get(at..)?;
            if rest.starts_with(b"--") {
                return Some(form);
            }
            let start = at + if rest.starts_with(b"\r\n") { 2 } else { 0 };
            let head_end = find(body, b"\r\n\r\n", start)?;
            let head = std::str::from_utf8(body.get(start..head_end)?).ok()?;
            let value_start = head_end + 4;
            let value_end = find(body, next_part.as_bytes(), value_start)?;
            form.parts.push(Part {
                name: disposition_name(head),
                head: head.to_string(),
                value: body.get(value_start..value_end)?.to_vec(),
            });
            at = value_end + next_part.len();
        }
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.parts
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.value.as_slice())
    }

    /// A text part: replaces the one of that name in place, or comes last.
    pub fn set_simple(&mut self, name: &str, value: Vec<u8>) {
        let part = Part {
            name: Some(name.to_string()),
            head: format!("Content-Disposition: form-data; name=\"{name}\""),
            value,
        };
        match self
            .parts
            .iter_mut()
            .find(|p| p.name.as_deref() == Some(name))
        {
            Some(p) => *p = part,
            None => self.parts.push(part),
        }
    }

    pub fn delete(&mut self, name: &str) {
        self.parts.retain(|p| p.name.as_deref() != Some(name));
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.parts {
            out.extend_from_slice(b"--");
            out.extend_from_slice(self.boundary.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(p.head.as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(&p.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(self.boundary.as_bytes());
        out.extend_from_slice(b"--\r\n");
        out
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The `name` of a part's Content-Disposition.
fn disposition_name(head: &str) -> Option<String> {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    line.split(';').find_map(|p| {
        p.trim()
            .strip_prefix("name=")
            .map(|n| n.trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--XX--\r\n";

    #[test]
    fn edits_keep_other_parts() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XX"),
            Some("XX".into())
        );
        assert_eq!(
            boundary("multipart/form-data;boundary=\"X Y\""),
            Some("X".into())
        );
        assert_eq!(boundary("multipart/form-data"), None);
        let mut m = Multipart::parse(BODY, "XX").unwrap();
        assert_eq!(m.get("a"), Some(&b"1"[..]));
        assert_eq!(m.to_bytes(), BODY);
        m.set_simple("a", b"2".to_vec());
        m.set_simple("b", b"3".to_vec());
        m.delete("none");
        let again = Multipart::parse(&m.to_bytes(), "XX").unwrap();
        assert_eq!(again.get("a"), Some(&b"2"[..]));
        assert_eq!(again.get("b"), Some(&b"3"[..]));
        assert_eq!(again.get("f"), Some(&b"\x00\x01"[..]));
        assert!(Multipart::parse(b"garbage", "XX").is_none());
        assert_eq!(
            Multipart::parse(b"", "XX").unwrap().to_bytes(),
            b"--XX--\r\n"
        );
    }
}
