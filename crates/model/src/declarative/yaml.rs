//! YAML read as Kong reads `kong.yml`: libyaml-style events resolved by lyaml's rules
//! (lyaml 6.2.8: `lib/lyaml/implicit.lua`, `explicit.lua` and the loader in `init.lua`). They are
//! neither YAML 1.1's (`y` and `n` stay strings) nor YAML 1.2's (`yes` and `on` are booleans,
//! `010` is octal 8, `1:30` is 90).
//!
//! Plain scalars go through lyaml's implicit chain; quoted and block scalars are strings; the
//! tags `!!str`, `!!int`, `!!float`, `!!bool` and `!!null` convert whatever the style, and other
//! tags are ignored. Anchors, aliases and `<<` merge keys work as in lyaml. Only the first
//! document is returned, though every document must parse.

use serde_json::{Map, Number, Value};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StrInput, Tag};
use std::collections::HashMap;

/// Nesting deeper than this is refused: loading recurses once per level (serde-saphyr's default
/// budget had the same bound).
const MAX_DEPTH: usize = 64;

/// Nodes that aliases may copy in, in all; bounds alias bombs (serde-saphyr's default).
const MAX_REPLAYED_NODES: usize = 1_000_000;

/// Namespace of `!!` tags.
const YAML_TAGS: &str = "tag:yaml.org,2002:";

/// Parses YAML text into a document; an empty stream is `null`.
pub(super) fn parse(text: &str) -> Result<Value, String> {
    let options = serde_saphyr::granit_parser::options! {
        emit_comments: false,
        // As libyaml.
        bom_inside_document_as_content: true,
        block_scalar_eof_without_line_feed: true,
    };
    let mut loader = Loader {
        events: Parser::new_from_str_with_options(text, options),
        anchors: HashMap::new(),
        replayed: 0,
    };
    loader.stream()
}

/// A loaded node and, for a scalar, its text (map keys keep the text of non-string scalars).
#[derive(Clone)]
struct Loaded {
    value: Value,
    text: Option<String>,
}

struct Loader<'a> {
    events: Parser<'a, StrInput<'a>>,
    /// By the parser's anchor id, unique across documents.
    anchors: HashMap<usize, Loaded>,
    replayed: usize,
}

impl<'a> Loader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), String> {
        match self.events.next() {
            Some(Ok(e)) => Ok(e),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("unexpected end of the stream".into()),
        }
    }

    /// lyaml loads every document and returns the first.
    fn stream(&mut self) -> Result<Value, String> {
        let mut first = None;
        loop {
            let (event, _) = self.next()?;
            match event {
                Event::StreamEnd => return Ok(first.unwrap_or(Value::Null)),
                Event::DocumentStart(..) => {
                    let (event, span) = self.next()?;
                    let doc = self.node(event, span, 0)?;
                    first.get_or_insert(doc.value);
                }
                _ => {}
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Loaded, String> {
        if depth > MAX_DEPTH {
            return Err(at(
                &format!("nesting deeper than {MAX_DEPTH} levels"),
                &span,
            ));
        }
        let (loaded, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(&text, style, tag.as_deref()).map_err(|m| at(&m, &span))?;
                let text = Some(text.into_owned());
                (Loaded { value, text }, anchor)
            }
            Event::Alias(id) => return self.alias(id, &span),
            Event::SequenceStart(_, anchor, _) => (self.sequence(depth)?, anchor),
            Event::MappingStart(_, anchor, _) => (self.mapping(depth)?, anchor),
            other => return Err(at(&format!("unexpected {other:?}"), &span)),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, loaded.clone());
        }
        Ok(loaded)
    }

    fn alias(&mut self, id: usize, span: &Span) -> Result<Loaded, String> {
        // An anchor is registered once its node is complete: an alias inside it is a cycle.
        let Some(target) = self.anchors.get(&id) else {
            return Err(at("alias to an enclosing node", span));
        };
        self.replayed += node_count(&target.value);
        if self.replayed > MAX_REPLAYED_NODES {
            return Err(at(
                &format!("aliases expand to more than {MAX_REPLAYED_NODES} nodes"),
                span,
            ));
        }
        Ok(target.clone())
    }

    fn sequence(&mut self, depth: usize) -> Result<Loaded, String> {
        let mut items = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                break;
            }
            items.push(self.node(event, span, depth + 1)?.value);
        }
        Ok(Loaded {
            value: Value::Array(items),
            text: None,
        })
    }

    /// Later keys replace earlier ones; `<<` (or a `!!merge` key) adds the keys of a mapping, or
    /// of each mapping of a sequence, that are not set yet, so explicit keys always win.
    fn mapping(&mut self, depth: usize) -> Result<Loaded, String> {
        let mut map = Map::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let merge_tag = event.tag().is_some_and(|t| is_yaml_tag(t, "merge"));
            let key = self.node(event, span, depth + 1)?;
            let (event, value_span) = self.next()?;
            let value = self.node(event, value_span, depth + 1)?.value;
            if merge_tag || key.value.as_str() == Some("<<") {
                merge(&mut map, value).map_err(|m| at(&m, &value_span))?;
                continue;
            }
            let key = match (key.value, key.text) {
                (Value::String(s), _) => s,
                // JSON keys are strings: `1: x` or `true: x` keep their text.
                (_, Some(text)) => text,
                _ => return Err(at("a mapping key must be a scalar", &span)),
            };
            map.insert(key, value);
        }
        Ok(Loaded {
            value: Value::Object(map),
            text: None,
        })
    }
}

fn merge(map: &mut Map<String, Value>, value: Value) -> Result<(), String> {
    let mut add = |from: Map<String, Value>| {
        for (k, v) in from {
            map.entry(k).or_insert(v);
        }
    };
    match value {
        Value::Object(from) => add(from),
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(from) => add(from),
                    other => {
                        return Err(format!("invalid '<<' sequence element {}: {other}", i + 1));
                    }
                }
            }
        }
        other => return Err(format!("invalid '<<' merge event: {other}")),
    }
    Ok(())
}

/// Nodes in a value, counting itself.
fn node_count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(node_count).sum(),
        Value::Object(m) => m.values().map(node_count).sum(),
        _ => 0,
    }
}

fn at(msg: &str, span: &Span) -> String {
    format!(
        "{msg} at line {} column {}",
        span.start.line(),
        span.start.col() + 1
    )
}

fn is_yaml_tag(tag: &Tag, name: &str) -> bool {
    tag.suffix_in_namespace(YAML_TAGS).as_deref() == Some(name)
}

/// lyaml's `load_scalar`: an explicit core tag converts (or fails), otherwise plain scalars
/// resolve implicitly and every other style is a string.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    let explicit = tag.and_then(|t| {
        ["str", "null", "bool", "int", "float"]
            .into_iter()
            .find(|name| is_yaml_tag(t, name))
    });
    let Some(name) = explicit else {
        return if matches!(style, ScalarStyle::Plain) {
            implicit(text)
        } else {
            Ok(Value::String(text.into()))
        };
    };
    let value = match name {
        "str" => Some(Value::String(text.into())),
        "null" => Some(Value::Null),
        "bool" => bool_token(text)
            .or(match text {
                "y" | "Y" => Some(true),
                "n" | "N" => Some(false),
                _ => None,
            })
            .map(Value::Bool),
        "int" => explicit_int(text)?.map(|n| n.into_value(text)),
        _ => explicit_float(text)?.map(|n| Num::Float(n.as_f64()).into_value(text)),
    };
    value.ok_or_else(|| format!("invalid '{YAML_TAGS}{name}' value: '{text}'"))
}

/// lyaml's implicit chain, in its order: null, octal, decimal, float, bool, inf, nan,
/// hexadecimal, binary, sexagesimal, sexagesimal float, else the string itself.
fn implicit(text: &str) -> Result<Value, String> {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Value::Null);
    }
    if let Some(n) = octal(text)?
        .or_else(|| decimal(text))
        .or_else(|| float(text))
    {
        return Ok(n.into_value(text));
    }
    if let Some(b) = bool_token(text) {
        return Ok(Value::Bool(b));
    }
    // `.inf` and `.nan` have no JSON form and stay text, as they fall through to here.
    let n = match hexadecimal(text) {
        Some(n) => Some(n),
        None => binary(text)?,
    };
    Ok(
        match n.or_else(|| sexagesimal(text)).or_else(|| sexfloat(text)) {
            Some(n) => n.into_value(text),
            None => Value::String(text.into()),
        },
    )
}

/// `!!int`: octal, decimal, hexadecimal, binary or sexagesimal.
fn explicit_int(text: &str) -> Result<Option<Num>, String> {
    if let Some(n) = octal(text)?.or_else(|| decimal(text)) {
        return Ok(Some(n));
    }
    if let Some(n) = hexadecimal(text) {
        return Ok(Some(n));
    }
    Ok(binary(text)?.or_else(|| sexagesimal(text)))
}

/// `!!float`: a float, nan, inf, any integer form but sexagesimal, or a sexagesimal float.
fn explicit_float(text: &str) -> Result<Option<Num>, String> {
    if let Some(n) = float(text) {
        return Ok(Some(n));
    }
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return Ok(Some(Num::Float(f64::NAN)));
    }
    if let Some(inf) = infinity(text) {
        return Ok(Some(Num::Float(inf)));
    }
    if let Some(n) = octal(text)?.or_else(|| decimal(text)) {
        return Ok(Some(n));
    }
    if let Some(n) = hexadecimal(text) {
        return Ok(Some(n));
    }
    Ok(binary(text)?.or_else(|| sexfloat(text)))
}

/// lyaml's booleans: true/false, yes/no, on/off in lower, capitalized and upper case.
fn bool_token(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn infinity(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A number as lyaml makes it: Lua on LuaJIT has only doubles, integers are kept exact here.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn neg(self, negative: bool) -> Num {
        match (self, negative) {
            (n, false) => n,
            (Num::Int(i), true) => i.checked_neg().map_or(Num::Float(-(i as f64)), Num::Int),
            (Num::Float(f), true) => Num::Float(-f),
        }
    }

    /// Infinities and NaN have no JSON form: they keep their text.
    fn into_value(self, text: &str) -> Value {
        match self {
            Num::Int(i) => Value::from(i),
            Num::Float(f) => {
                Number::from_f64(f).map_or_else(|| Value::String(text.into()), Value::Number)
            }
        }
    }
}

/// Splits off an optional `+` or `-`.
fn sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

/// Digits in a radix, exact while they fit an i64.
fn digits_value(digits: impl Iterator<Item = u32>, radix: u32) -> Num {
    let mut n = Num::Int(0);
    for d in digits {
        n = match n {
            Num::Int(i) => i
                .checked_mul(i64::from(radix))
                .and_then(|i| i.checked_add(i64::from(d)))
                .map_or_else(
                    || Num::Float(i as f64 * f64::from(radix) + f64::from(d)),
                    Num::Int,
                ),
            Num::Float(f) => Num::Float(f * f64::from(radix) + f64::from(d)),
        };
    }
    n
}

/// lyaml reads octal and binary digits with `gsub(rest, '_*(.)', ...)`: a trailing `_` is
/// taken as a digit and Lua fails on it, so Kong refuses such a file.
fn underscored_digits(digits: &str, radix: u32, text: &str) -> Result<Num, String> {
    if digits.ends_with('_') {
        return Err(format!(
            "'{text}' cannot be read: lyaml fails on a trailing '_' in an octal or binary number"
        ));
    }
    Ok(digits_value(
        digits.chars().filter_map(|c| c.to_digit(radix)),
        radix,
    ))
}

/// `^([+-]?)0_*([0-7][0-7_]*)$`, e.g. `010` is 8.
fn octal(text: &str) -> Result<Option<Num>, String> {
    let (negative, rest) = sign(text);
    let Some(rest) = rest.strip_prefix('0') else {
        return Ok(None);
    };
    let digits = rest.trim_start_matches('_');
    if !digits.starts_with(|c: char| ('0'..='7').contains(&c))
        || !digits.bytes().all(|b| matches!(b, b'0'..=b'7' | b'_'))
    {
        return Ok(None);
    }
    Ok(Some(underscored_digits(digits, 8, text)?.neg(negative)))
}

/// `^([+-]?)_*([0-9][0-9_]*)$` without the underscores; leading zeros are octal's unless a
/// digit is 8 or 9 (`09` is 9).
fn decimal(text: &str) -> Option<Num> {
    let (negative, rest) = sign(text);
    let digits = rest.trim_start_matches('_');
    if !digits.starts_with(|c: char| c.is_ascii_digit())
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let n = digits_value(digits.chars().filter_map(|c| c.to_digit(10)), 10);
    Some(n.neg(negative))
}

/// `^([+-]?)(0x_*[0-9a-fA-F][0-9a-fA-F_]*)$` (lower-case `x` only).
fn hexadecimal(text: &str) -> Option<Num> {
    let (negative, rest) = sign(text);
    let digits = rest.strip_prefix("0x")?.trim_start_matches('_');
    if !digits.starts_with(|c: char| c.is_ascii_hexdigit())
        || !digits.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_')
    {
        return None;
    }
    let n = digits_value(digits.chars().filter_map(|c| c.to_digit(16)), 16);
    Some(n.neg(negative))
}

/// `^([+-]?)0b_*([01][01_]+)$`: at least two characters after the `0b` and its underscores,
/// so `0b1` stays a string.
fn binary(text: &str) -> Result<Option<Num>, String> {
    let (negative, rest) = sign(text);
    let Some(rest) = rest.strip_prefix("0b") else {
        return Ok(None);
    };
    let digits = rest.trim_start_matches('_');
    if digits.len() < 2
        || !digits.starts_with(['0', '1'])
        || !digits.bytes().all(|b| matches!(b, b'0' | b'1' | b'_'))
    {
        return Ok(None);
    }
    Ok(Some(underscored_digits(digits, 2, text)?.neg(negative)))
}

/// Lua's `tonumber` (LuaJIT) on the text without underscores, for text with a `.`, `e` or `E`.
fn float(text: &str) -> Option<Num> {
    if !text.contains(['.', 'e', 'E']) {
        return None;
    }
    lua_tonumber(&text.replace('_', "")).map(Num::Float)
}

/// LuaJIT's `tonumber` on a string: surrounding whitespace, a sign, then a decimal number with
/// optional fraction and `e` exponent, or `0x` hex with optional fraction and `p` exponent.
fn lua_tonumber(s: &str) -> Option<f64> {
    let s = s.trim_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, body) = sign(s);
    let v = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => hex_float(hex)?,
        // Rust's grammar on these characters is Lua's; it would also take `inf` and `nan`.
        None if body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            && !body.starts_with(['+', '-']) =>
        {
            body.parse::<f64>().ok()?
        }
        None => return None,
    };
    Some(if negative { -v } else { v })
}

fn hex_float(h: &str) -> Option<f64> {
    let (mantissa, exponent) = match h.find(['p', 'P']) {
        Some(i) => (&h[..i], Some(&h[i + 1..])),
        None => (h, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    let mut v = 0.0_f64;
    for d in int
        .chars()
        .chain(frac.chars())
        .filter_map(|c| c.to_digit(16))
    {
        v = v * 16.0 + f64::from(d);
    }
    let mut exp = -4_i64.saturating_mul(i64::try_from(frac.len()).ok()?);
    if let Some(e) = exponent {
        let (negative, digits) = sign(e);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let e = digits.parse::<i64>().unwrap_or(i64::MAX);
        exp = exp.saturating_add(if negative { -e } else { e });
    }
    let exp = i32::try_from(exp.clamp(-2000, 2000)).ok()?;
    Some(v * 2.0_f64.powi(exp))
}

/// `^[+-]?[0-9]+:[0-5]?[0-9][:0-9]*$` (base 60, e.g. `1:30` is 90); the `[0-5]?` is optional,
/// so any digit may follow the first colon.
fn sexagesimal_body(body: &str) -> Option<Num> {
    let (head, tail) = body.split_once(':')?;
    if head.is_empty()
        || !head.bytes().all(|b| b.is_ascii_digit())
        || !tail.starts_with(|c: char| c.is_ascii_digit())
        || !tail.bytes().all(|b| b.is_ascii_digit() || b == b':')
    {
        return None;
    }
    let mut n = Num::Int(0);
    for group in body.split(':').filter(|g| !g.is_empty()) {
        let g = digits_value(group.chars().filter_map(|c| c.to_digit(10)), 10);
        n = match (n, g) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_mul(60)
                .and_then(|a| a.checked_add(b))
                .map_or(Num::Float(a as f64 * 60.0 + b as f64), Num::Int),
            (a, b) => Num::Float(a.as_f64() * 60.0 + b.as_f64()),
        };
    }
    Some(n)
}

fn sexagesimal(text: &str) -> Option<Num> {
    let (negative, body) = sign(text);
    Some(sexagesimal_body(body)?.neg(negative))
}

/// A sexagesimal with a decimal fraction, e.g. `1:30.5` is 90.5.
fn sexfloat(text: &str) -> Option<Num> {
    let (negative, body) = sign(text);
    let (whole, frac) = body.split_once('.')?;
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction: f64 = format!("0.{frac}").parse().ok()?;
    let v = sexagesimal_body(whole)?.as_f64() + fraction;
    Some(Num::Float(v).neg(negative))
}

#[cfg(test)]
mod tests;
