//! What decides cacheability: Cache-Control directives (Kong's `parse_directive_header` and
//! `calculate_resource_ttl`) and media types (Kong's `parse_mime_type`, matched as its handler
//! matches `content_type`).

/// The Cache-Control directives the plugin looks at. Numbers are kept only when the value is
/// one (Kong stores other values as strings, which its handler cannot compare).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Directives {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub only_if_cached: bool,
    pub max_age: Option<f64>,
    pub s_maxage: Option<f64>,
    pub max_stale: Option<f64>,
    pub min_fresh: Option<f64>,
}

impl Directives {
    /// Parses every value of the field (repeated fields are one comma-separated list).
    pub fn parse<'a>(values: impl Iterator<Item = &'a [u8]>) -> Directives {
        let mut d = Directives::default();
        for value in values {
            let Ok(text) = std::str::from_utf8(value) else {
                continue;
            };
            for part in text.split(',') {
                let (name, arg) = match part.split_once('=') {
                    Some((n, a)) => (n, Some(a.trim())),
                    None => (part, None),
                };
                let name = name.trim().to_ascii_lowercase();
                let number = arg.and_then(|a| a.parse::<f64>().ok());
                match name.as_str() {
                    "no-store" => d.no_store = true,
                    "no-cache" => d.no_cache = true,
                    "private" => d.private = true,
                    "only-if-cached" => d.only_if_cached = true,
                    "max-age" => d.max_age = number,
                    "s-maxage" => d.s_maxage = number,
                    "max-stale" => d.max_stale = number,
                    "min-fresh" => d.min_fresh = number,
                    _ => {}
                }
            }
        }
        d
    }

    /// Seconds a response may be served: `s-maxage`, else `max-age`, else what `Expires` (the
    /// last one) leaves from `now`; never negative, 0 when nothing says.
    pub fn resource_ttl(&self, expires: Option<&[u8]>, now: i64) -> f64 {
        let max_age = self.s_maxage.or(self.max_age).or_else(|| {
            let text = std::str::from_utf8(expires?).ok()?;
            let at = httpdate::parse_http_date(text.trim()).ok()?;
            let secs = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
            Some((secs - now) as f64)
        });
        max_age.map_or(0.0, |a| a.max(0.0))
    }
}

/// A media type: lower-case type and subtype, parameters with lower-case names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub kind: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_control() && !"()<>@,;:\\\"/[]?={} \t".contains(c)
}

fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    (end > 0).then(|| s.split_at(end))
}

impl MediaType {
    /// RFC 2045's `type "/" subtype *(";" attribute "=" value)` (or a lone `*`), the whole
    /// text; `None` when it does not parse, as Kong's `parse_mime_type`.
    pub fn parse(text: &str) -> Option<MediaType> {
        if text == "*" {
            return Some(MediaType {
                kind: "*".into(),
                subtype: "*".into(),
                params: Vec::new(),
            });
        }
        let (kind, rest) = token(text)?;
        let rest = rest.strip_prefix('/')?;
        let (subtype, mut rest) = token(rest)?;
        let mut params = Vec::new();
        while !rest.is_empty() {
            rest = rest.trim_start_matches([' ', '\t']);
            rest = rest.strip_prefix(';')?;
            rest = rest.trim_start_matches([' ', '\t']);
            let (name, after) = token(rest)?;
            let after = after.strip_prefix('=')?;
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => quoted_string(quoted)?,
                None => {
                    let (v, a) = token(after)?;
                    (v.to_string(), a)
                }
            };
            params.push((name.to_ascii_lowercase(), value));
            rest = after;
        }
        Some(MediaType {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            params,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn distinct_params(&self) -> usize {
        let mut names: Vec<&str> = self.params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    }

    /// Whether a response of type `actual` (`None`: absent from or invalid in the response)
    /// is one this configured type accepts: wildcards for type and subtype, and exactly the
    /// same parameters.
    pub fn accepts(&self, actual: Option<&MediaType>) -> bool {
        let kind = actual.map(|a| a.kind.as_str());
        let subtype = actual.map(|a| a.subtype.as_str());
        if self.kind != "*" && kind != Some(self.kind.as_str()) {
            return false;
        }
        if self.subtype != "*" && subtype != Some(self.subtype.as_str()) {
            return false;
        }
        let actual_params = actual.map_or(0, MediaType::distinct_params);
        self.params
            .iter()
            .all(|(n, v)| actual.and_then(|a| a.param(n)) == Some(v.as_str()))
            && actual_params == self.distinct_params()
    }
}

/// The rest of a quoted string after its opening quote: its unescaped text and what follows.
fn quoted_string(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c if c.is_ascii_control() => return None,
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(text: &str) -> Directives {
        Directives::parse(std::iter::once(text.as_bytes()))
    }

    #[test]
    fn directives_as_kong_reads_them() {
        let d = cc("public, Max-Age=60, no-cache=\"Set-Cookie\", s-maxage = 5");
        assert!(d.no_cache);
        assert_eq!(d.max_age, Some(60.0));
        assert_eq!(d.s_maxage, Some(5.0));
        assert!(!d.no_store && !d.private);
        assert_eq!(cc("max-age=soon").max_age, None);
        let both = Directives::parse([&b"no-store"[..], &b"private"[..]].into_iter());
        assert!(both.no_store && both.private);
    }

    #[test]
    fn resource_ttl_prefers_s_maxage_then_max_age_then_expires() {
        let now = 1_700_000_000;
        assert_eq!(cc("max-age=10, s-maxage=20").resource_ttl(None, now), 20.0);
        assert_eq!(cc("max-age=10").resource_ttl(None, now), 10.0);
        assert_eq!(cc("max-age=-5").resource_ttl(None, now), 0.0);
        let expires = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(now as u64 + 100),
        );
        assert_eq!(
            cc("public").resource_ttl(Some(expires.as_bytes()), now),
            100.0
        );
        assert_eq!(cc("public").resource_ttl(Some(b"garbage"), now), 0.0);
        assert_eq!(cc("").resource_ttl(None, now), 0.0);
    }

    #[test]
    fn media_types_parse_like_kong() {
        let m = MediaType::parse("Application/JSON; Charset=\"utf-8\"").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.subtype.as_str()),
            ("application", "json")
        );
        assert_eq!(m.params, vec![("charset".into(), "utf-8".into())]);
        assert!(MediaType::parse("application/xml;").is_none());
        assert!(MediaType::parse("text").is_none());
        assert_eq!(MediaType::parse("*").unwrap().subtype, "*");
    }

    #[test]
    fn configured_types_match_exactly_or_by_wildcard() {
        let conf = |s| MediaType::parse(s).unwrap();
        let actual = |s| MediaType::parse(s);
        assert!(conf("application/json").accepts(actual("application/json").as_ref()));
        // Parameters must be the same set.
        assert!(
            !conf("application/json").accepts(actual("application/json; charset=utf-8").as_ref())
        );
        assert!(
            conf("text/html; charset=utf-8").accepts(actual("text/html; charset=utf-8").as_ref())
        );
        assert!(
            !conf("application/xml; charset=UTF-8").accepts(actual("application/xml").as_ref())
        );
        assert!(conf("application/*").accepts(actual("application/xml").as_ref()));
        assert!(conf("*/*").accepts(actual("image/png").as_ref()));
        assert!(!conf("text/plain").accepts(None));
    }
}
