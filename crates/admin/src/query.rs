//! Query arguments of collection reads: `size`, `offset` and `tags`, checked with Kong's
//! messages (`kong/api/endpoints.lua`, `kong/db/dao/init.lua`), and the `next` link Kong builds.

use crate::errors::AdminError;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use silverback_store::{DEFAULT_PAGE_SIZE, ListQuery, MAX_PAGE_SIZE, TagFilter};

/// Kong's limit on tags in one filter.
pub const MAX_TAGS: usize = 5;

/// Decoded query-string arguments, in order (a name may repeat), and the raw string.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>, String);

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        let raw = raw.unwrap_or_default();
        let args = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query(args, raw.to_string())
    }

    /// The first value of an argument as bytes, without UTF-8 repair (tags must reject
    /// invalid UTF-8 rather than see replacement characters).
    pub fn get_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.1.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| {
                let v = v.replace('+', " ");
                percent_encoding::percent_decode_str(&v).collect()
            })
        })
    }

    /// The first value of an argument.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Page size: default 100, an integer in 1..=1000 (code 9 otherwise).
pub fn size(q: &Query) -> Result<usize, AdminError> {
    let Some(raw) = q.get("size") else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    let n: f64 = raw
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| AdminError::InvalidSize("size must be a number".into()))?;
    if n.fract() != 0.0 || n < 1.0 || n > MAX_PAGE_SIZE as f64 {
        return Err(AdminError::InvalidSize(format!(
            "size must be an integer between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    Ok(n as usize)
}

/// Bytes Kong allows in a tag: printable ASCII except `,` and `/`, and UTF-8 lead/continuation
/// bytes up to 0xF4.
fn tag_byte(b: u8) -> bool {
    matches!(b, 0x20..=0x2B | 0x2D | 0x2E | 0x30..=0x7E | 0x80..=0xF4)
}

/// True when `s` is one or more runs of tag bytes, each followed by `sep` or the end (Kong's
/// `TAGS_AND_REGEX` / `TAGS_OR_REGEX`): `a,` is accepted, `a,,b` and `,a` are not.
fn joined_by(s: &[u8], sep: u8) -> bool {
    let parts: Vec<&[u8]> = s.split(|b| *b == sep).collect();
    let n = parts.len();
    !s.is_empty()
        && parts.iter().enumerate().all(|(i, p)| {
            if p.is_empty() {
                i + 1 == n && i > 0
            } else {
                p.iter().all(|b| tag_byte(*b))
            }
        })
}

/// `?tags=a,b` (all) or `?tags=a/b` (any); `None` when absent.
pub fn tags(q: &Query) -> Result<Option<TagFilter>, AdminError> {
    let Some(raw) = q.get("tags") else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Err(AdminError::InvalidOption("tags", "cannot be null".into()));
    }
    let bytes = q
        .get_bytes("tags")
        .unwrap_or_else(|| raw.as_bytes().to_vec());
    let bytes = bytes.as_slice();
    let split = |sep: char| -> Vec<String> {
        raw.split(sep)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    };
    let filter = if joined_by(bytes, b',') {
        TagFilter::All(split(','))
    } else if joined_by(bytes, b'/') {
        TagFilter::Any(split('/'))
    } else {
        return Err(AdminError::InvalidOption(
            "tags",
            "invalid filter syntax".into(),
        ));
    };
    let n = match &filter {
        TagFilter::All(t) | TagFilter::Any(t) => t.len(),
    };
    if n > MAX_TAGS {
        return Err(AdminError::InvalidOption(
            "tags",
            format!("cannot query more than {MAX_TAGS} tags"),
        ));
    }
    Ok(Some(filter))
}

/// The list query of a collection read (without the parent filter).
pub fn list_query(q: &Query) -> Result<ListQuery, AdminError> {
    let tags = tags(q)?;
    let size = size(q)?;
    Ok(ListQuery {
        size,
        offset: q.get("offset").map(str::to_string),
        tags,
        foreign: None,
    })
}

/// What nginx's `ngx.escape_uri` leaves alone (RFC 3986 unreserved characters).
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn escape(s: &str) -> String {
    utf8_percent_encode(s, URI_COMPONENT).to_string()
}

/// Kong's `next` for a top-level collection: `/services?offset=X&tags=T&size=N`, carrying the
/// client's `tags` and `size` as given.
pub fn next_top(collection: &str, offset: &str, q: &Query) -> String {
    let mut link = format!("/{collection}?offset={}", escape(offset));
    if let Some(t) = q.get("tags") {
        link.push_str("&tags=");
        link.push_str(&escape(t));
    }
    if let Some(s) = q.get("size") {
        link.push_str("&size=");
        link.push_str(&escape(s));
    }
    link
}

/// Kong's `next` for a nested collection: `/services/{key}/routes?offset=X` (no tags or size,
/// as Kong writes it).
pub fn next_nested(parent: &str, parent_key: &str, child: &str, offset: &str) -> String {
    format!(
        "/{parent}/{}/{child}?offset={}",
        escape(parent_key),
        escape(offset)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    fn tag_err(s: &str) -> String {
        match tags(&q(s)) {
            Err(AdminError::InvalidOption(_, m)) => m,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size(&q("")).ok(), Some(100));
        assert_eq!(size(&q("size=1000")).ok(), Some(1000));
        for (s, msg) in [
            ("size=x", "size must be a number"),
            ("size=0", "size must be an integer between 1 and 1000"),
            ("size=1001", "size must be an integer between 1 and 1000"),
            ("size=2.5", "size must be an integer between 1 and 1000"),
        ] {
            match size(&q(s)) {
                Err(AdminError::InvalidSize(m)) => assert_eq!(m, msg),
                other => panic!("{s}: {other:?}"),
            }
        }
    }

    #[test]
    fn tag_filters_like_kong() {
        assert_eq!(
            tags(&q("tags=a,b")).ok().flatten(),
            Some(TagFilter::All(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            tags(&q("tags=a/b")).ok().flatten(),
            Some(TagFilter::Any(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            tags(&q("tags=corp_%20a")).ok().flatten(),
            Some(TagFilter::All(vec!["corp_ a".into()]))
        );
        assert_eq!(
            tags(&q("tags=%F0%9F%A6%8D")).ok().flatten(),
            Some(TagFilter::All(vec!["🦍".into()]))
        );
        assert_eq!(tag_err("tags="), "cannot be null");
        assert_eq!(tag_err("tags=a,b/c"), "invalid filter syntax");
        assert_eq!(tag_err("tags=a/b,c"), "invalid filter syntax");
        assert_eq!(tag_err("tags=a,,b"), "invalid filter syntax");
        assert_eq!(tag_err("tags=a,b,c,d,e,f"), "cannot query more than 5 tags");
        assert_eq!(tag_err("tags=%FF"), "invalid filter syntax");
        assert_eq!(
            tags(&q("tags=a,")).ok().flatten(),
            Some(TagFilter::All(vec!["a".into()]))
        );
    }

    #[test]
    fn next_links() {
        assert_eq!(
            next_top("services", "a/b+c=", &q("tags=x%20y&size=2")),
            "/services?offset=a%2Fb%2Bc%3D&tags=x%20y&size=2"
        );
        assert_eq!(
            next_nested("services", "my svc", "routes", "abc"),
            "/services/my%20svc/routes?offset=abc"
        );
    }
}
