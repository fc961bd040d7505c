//! Kong's config templates (penlight's, with `#` lines off): text with `$(expr)` parts, each
//! a Lua expression rendered as `tostring(expr or '')`. The parentheses are matched by
//! counting, as Lua's `%b()`; a `$(` without its `)` is plain text. Literal text inside an
//! expression escapes a template: `$('$(x)')` renders `$(x)`.
//!
//! Names an expression can use: `headers`, `query_params`, `uri_captures`, `shared`, and the
//! sandbox functions of [`super::lua::builtin_global`]. `headers` and `query_params` are read
//! from the request when a template first uses them, and kept for the rest of the plugin's run,
//! as Kong's lazily loaded environment does.

use super::args::Args;
use super::lua::{self, Expr, Globals, Key, Table, Val};
use crate::pdk::{Request, UriCaptures};
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Expr(Expr),
}

/// A compiled template; one that did not compile fails when rendered (Kong accepts header
/// templates without compiling them and fails the request).
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Result<Vec<Piece>, String>,
    /// The source, for error messages.
    source: String,
}

impl Template {
    pub fn compile(source: &str) -> Template {
        Template {
            pieces: parse(source),
            source: source.to_string(),
        }
    }

    /// Why the template does not compile.
    pub fn error(&self) -> Option<&str> {
        self.pieces.as_ref().err().map(String::as_str)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn render(&self, env: &mut Env, sources: &Sources<'_>) -> Result<String, String> {
        let pieces = self.pieces.as_ref().map_err(Clone::clone)?;
        let mut out = String::new();
        let mut bound = Bound { env, sources };
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Expr(e) => lua::render_into(&mut out, &lua::eval(e, &mut bound)?),
            }
        }
        Ok(out)
    }
}

fn parse(source: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("$(") {
        let Some(len) = balanced(&rest[at + 1..]) else {
            text.push_str(&rest[..at + 2]);
            rest = &rest[at + 2..];
            continue;
        };
        text.push_str(&rest[..at]);
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        let inner = &rest[at + 2..at + len];
        pieces.push(Piece::Expr(lua::parse(inner)?));
        rest = &rest[at + 1 + len..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The length of the balanced `(...)` that `s` starts with, closing parenthesis included.
fn balanced(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// What templates read from.
pub struct Sources<'a> {
    pub request: &'a Request,
    pub captures: &'a UriCaptures,
}

/// A plugin run's template environment: values loaded on first use.
#[derive(Debug, Default)]
pub struct Env {
    headers: Option<Val>,
    query: Option<(Args, Val)>,
    captures: Option<Val>,
}

impl Env {
    /// The query arguments as the environment holds them (loading them now if needed).
    pub fn query_params(&mut self, sources: &Sources<'_>) -> &Args {
        &self
            .query
            .get_or_insert_with(|| query_args(sources.request))
            .0
    }
}

struct Bound<'e, 's, 'a> {
    env: &'e mut Env,
    sources: &'s Sources<'a>,
}

impl Globals for Bound<'_, '_, '_> {
    fn global(&mut self, name: &str) -> Val {
        match name {
            "headers" => self
                .env
                .headers
                .get_or_insert_with(|| headers_val(self.sources.request))
                .clone(),
            "query_params" => self
                .env
                .query
                .get_or_insert_with(|| query_args(self.sources.request))
                .1
                .clone(),
            "uri_captures" => self
                .env
                .captures
                .get_or_insert_with(|| captures_val(self.sources.captures))
                .clone(),
            // Kong's `kong.ctx.shared`: nothing here writes to it.
            "shared" => Val::Table(Arc::new(Table::default())),
            other => lua::builtin_global(other).unwrap_or(Val::Nil),
        }
    }
}

fn query_args(request: &Request) -> (Args, Val) {
    let args = Args::decode(request.query().unwrap_or_default());
    let val = args.to_val();
    (args, val)
}

/// The request's headers as `kong.request.get_headers()` gives them: a string per name, a
/// list for a repeated one.
fn headers_val(request: &Request) -> Val {
    let mut entries: Vec<(Key, Vec<Val>)> = Vec::new();
    request.headers.for_each(|name, value| {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = Val::str(&String::from_utf8_lossy(value));
        match entries
            .iter_mut()
            .find(|(k, _)| matches!(k, Key::Str(k) if *k == name))
        {
            Some((_, values)) => values.push(value),
            None => entries.push((Key::Str(name), vec![value])),
        }
    });
    Val::Table(Arc::new(Table {
        entries: entries
            .into_iter()
            .map(|(k, mut values)| {
                let v = if values.len() == 1 {
                    values.pop().unwrap_or(Val::Nil)
                } else {
                    Val::Table(Arc::new(Table::list(values)))
                };
                (k, v)
            })
            .collect(),
        header_keys: true,
    }))
}

/// `uri_captures`: positions (0 the whole match) and names.
fn captures_val(c: &UriCaptures) -> Val {
    let mut entries: Vec<(Key, Val)> = c
        .positional
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_deref().map(|v| (Key::Num(i as f64), Val::str(v))))
        .collect();
    entries.extend(
        c.named
            .iter()
            .map(|(n, v)| (Key::Str(n.clone()), Val::str(v))),
    );
    Val::Table(Arc::new(Table {
        entries,
        header_keys: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::uri::PathAndQuery;
    use http::{HeaderName, HeaderValue, Method, Version};

    fn render(src: &str, target: &'static str) -> Result<String, String> {
        let mut req = Request::new(
            Method::GET,
            crate::pdk::Scheme::Http,
            Version::HTTP_11,
            None,
            Default::default(),
            PathAndQuery::from_static(target),
        );
        req.headers.append(
            HeaderName::from_static("x-id"),
            HeaderValue::from_static("7"),
        );
        let captures = UriCaptures {
            positional: vec![Some("/u/foo".into()), Some("foo".into())],
            named: vec![("user".into(), "foo".into())],
        };
        let sources = Sources {
            request: &req,
            captures: &captures,
        };
        Template::compile(src).render(&mut Env::default(), &sources)
    }

    #[test]
    fn renders_like_kong() {
        assert_eq!(render("plain", "/").unwrap(), "plain");
        assert_eq!(render("id=$(headers.x_id)!", "/").unwrap(), "id=7!");
        assert_eq!(render("$(query_params.q)", "/?q=a+b").unwrap(), "a b");
        assert_eq!(render("$(query_params.flag)", "/?flag").unwrap(), "true");
        assert_eq!(
            render("$(uri_captures.user)/$(uri_captures[1])", "/").unwrap(),
            "foo/foo"
        );
        assert_eq!(render("$(uri_captures[0])", "/").unwrap(), "/u/foo");
        assert_eq!(render("[$(headers.none)]", "/").unwrap(), "[]");
        assert_eq!(render("$(shared.v or 'd')", "/").unwrap(), "d");
        assert_eq!(render("$('$(x)')", "/").unwrap(), "$(x)");
        assert_eq!(render("$(unclosed", "/").unwrap(), "$(unclosed");
        assert_eq!(render("a$b$", "/").unwrap(), "a$b$");
        assert!(render("$(10 * uri_captures.user)", "/").is_err());
        assert!(Template::compile("$(uri_captures user2)").error().is_some());
    }
}
