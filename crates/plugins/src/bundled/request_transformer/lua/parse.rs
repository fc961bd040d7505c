//! Lua's lexer and expression parser, for the expressions inside `$(...)`.

use super::{BinOp, Expr, number_text, parse_number};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Num(f64),
    Str(Arc<str>),
    Sym(&'static str),
    Eof,
}

const KEYWORDS: &[&str] = &[
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local",
    "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
];

const SYMBOLS: &[&str] = &[
    "...", "..", "==", "~=", "<=", ">=", "+", "-", "*", "/", "%", "^", "#", "<", ">", "=", "(",
    ")", "{", "}", "[", "]", ";", ":", ",", ".",
];

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Name(src[start..i].to_string()));
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            let text = &src[start..i];
            out.push(Tok::Num(
                parse_number(text).ok_or_else(|| format!("malformed number near '{text}'"))?,
            ));
        } else if c == b'"' || c == b'\'' {
            let (s, next) = quoted(src, i)?;
            out.push(Tok::Str(Arc::from(s)));
            i = next;
        } else if c == b'[' && matches!(b.get(i + 1), Some(b'[' | b'=')) {
            match long_string(src, i)? {
                Some((s, next)) => {
                    out.push(Tok::Str(Arc::from(s)));
                    i = next;
                }
                None => {
                    out.push(Tok::Sym("["));
                    i += 1;
                }
            }
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            return Err("comments are not supported in templates".into());
        } else {
            let sym = SYMBOLS
                .iter()
                .find(|s| src[i..].starts_with(**s))
                .ok_or_else(|| format!("unexpected symbol near '{}'", char::from(c)))?;
            out.push(Tok::Sym(sym));
            i += sym.len();
        }
    }
    out.push(Tok::Eof);
    Ok(out)
}

/// A quoted string starting at `start`; returns its value and the index after it.
fn quoted(src: &str, start: usize) -> Result<(String, usize), String> {
    let b = src.as_bytes();
    let quote = b[start];
    let mut out = Vec::new();
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            q if q == quote => {
                let s = String::from_utf8(out).map_err(|_| "invalid string".to_string())?;
                return Ok((s, i + 1));
            }
            b'\n' => break,
            b'\\' => {
                i += 1;
                let e = *b.get(i).ok_or("unfinished string")?;
                match e {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'v' => out.push(11),
                    b'0'..=b'9' => {
                        let digits = b[i..].iter().take(3).take_while(|d| d.is_ascii_digit());
                        let n = digits.count();
                        let v: u32 = src[i..i + n].parse().unwrap_or(256);
                        out.push(u8::try_from(v).map_err(|_| "escape sequence too large")?);
                        i += n - 1;
                    }
                    other => out.push(other),
                }
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Err("unfinished string".into())
}

/// `[[...]]` or `[==[...]==]` at `start`; `None` when `[` does not open one.
fn long_string(src: &str, start: usize) -> Result<Option<(String, usize)>, String> {
    let rest = &src[start + 1..];
    let level = rest.bytes().take_while(|&b| b == b'=').count();
    if rest.as_bytes().get(level) != Some(&b'[') {
        return Ok(None);
    }
    let open = start + 1 + level + 1;
    let close = format!("]{}]", "=".repeat(level));
    let end = src[open..].find(&close).ok_or("unfinished long string")?;
    let mut text = &src[open..open + end];
    // A newline right after the opening bracket is skipped.
    text = text
        .strip_prefix("\r\n")
        .or_else(|| text.strip_prefix('\n'))
        .unwrap_or(text);
    Ok(Some((text.to_string(), open + end + close.len())))
}

// ---------------------------------------------------------------------------------------
// Parser

/// Parses one expression (the inside of `$(...)`).
pub fn parse(src: &str) -> Result<Expr, String> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0 };
    let e = p.expr(0)?;
    match p.peek() {
        Tok::Eof => Ok(e),
        t => Err(format!("unexpected symbol near {}", describe(t))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Name(n) => format!("'{n}'"),
        Tok::Num(n) => format!("'{}'", number_text(*n)),
        Tok::Str(s) => format!("'\"{s}\"'"),
        Tok::Sym(s) => format!("'{s}'"),
        Tok::Eof => "'<eof>'".into(),
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// Binary operators with Lua's left and right priorities.
fn binary(t: &Tok) -> Option<(u8, u8, Option<BinOp>, bool)> {
    // (left, right, arithmetic/comparison op, is `and` (true) / `or` (false) when op is None)
    Some(match t {
        Tok::Name(n) if n == "or" => (1, 1, None, false),
        Tok::Name(n) if n == "and" => (2, 2, None, true),
        Tok::Sym(s) => {
            let op = match *s {
                "<" => BinOp::Lt,
                ">" => BinOp::Gt,
                "<=" => BinOp::Le,
                ">=" => BinOp::Ge,
                "~=" => BinOp::Ne,
                "==" => BinOp::Eq,
                ".." => BinOp::Concat,
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                "/" => BinOp::Div,
                "%" => BinOp::Mod,
                "^" => BinOp::Pow,
                _ => return None,
            };
            let (l, r) = match op {
                BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge | BinOp::Ne | BinOp::Eq => (3, 3),
                BinOp::Concat => (5, 4),
                BinOp::Add | BinOp::Sub => (6, 6),
                BinOp::Mul | BinOp::Div | BinOp::Mod => (7, 7),
                BinOp::Pow => (10, 9),
            };
            (l, r, Some(op), false)
        }
        _ => return None,
    })
}

const UNARY_PRIORITY: u8 = 8;

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).unwrap_or(&Tok::Eof)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }

    fn expect(&mut self, s: &'static str) -> Result<(), String> {
        if self.is_sym(s) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("'{s}' expected near {}", describe(self.peek())))
        }
    }

    fn expr(&mut self, limit: u8) -> Result<Expr, String> {
        let mut left = match self.peek().clone() {
            Tok::Name(n) if n == "not" => {
                self.pos += 1;
                Expr::Not(Box::new(self.expr(UNARY_PRIORITY)?))
            }
            Tok::Sym("-") => {
                self.pos += 1;
                Expr::Neg(Box::new(self.expr(UNARY_PRIORITY)?))
            }
            Tok::Sym("#") => {
                self.pos += 1;
                Expr::Len(Box::new(self.expr(UNARY_PRIORITY)?))
            }
            _ => self.simple()?,
        };
        while let Some((l, r, op, is_and)) = binary(self.peek()) {
            if l <= limit {
                break;
            }
            self.pos += 1;
            let right = self.expr(r)?;
            left = match op {
                Some(op) => Expr::Binary(op, Box::new(left), Box::new(right)),
                None if is_and => Expr::And(Box::new(left), Box::new(right)),
                None => Expr::Or(Box::new(left), Box::new(right)),
            };
        }
        Ok(left)
    }

    fn simple(&mut self) -> Result<Expr, String> {
        match self.peek().clone() {
            Tok::Num(n) => {
                self.pos += 1;
                Ok(Expr::Num(n))
            }
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Expr::Str(s))
            }
            Tok::Name(n) if n == "nil" => {
                self.pos += 1;
                Ok(Expr::Nil)
            }
            Tok::Name(n) if n == "true" => {
                self.pos += 1;
                Ok(Expr::Bool(true))
            }
            Tok::Name(n) if n == "false" => {
                self.pos += 1;
                Ok(Expr::Bool(false))
            }
            _ => self.suffixed(),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.next() {
            Tok::Name(n) if !KEYWORDS.contains(&n.as_str()) => Ok(Expr::Name(n)),
            Tok::Sym("(") => {
                let e = self.expr(0)?;
                self.expect(")")?;
                Ok(e)
            }
            t => Err(format!("unexpected symbol near {}", describe(&t))),
        }
    }

    fn suffixed(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            match self.peek().clone() {
                Tok::Sym(".") => {
                    self.pos += 1;
                    match self.next() {
                        Tok::Name(n) => e = Expr::Index(Box::new(e), Box::new(Expr::Str(n.into()))),
                        t => return Err(format!("<name> expected near {}", describe(&t))),
                    }
                }
                Tok::Sym("[") => {
                    self.pos += 1;
                    let k = self.expr(0)?;
                    self.expect("]")?;
                    e = Expr::Index(Box::new(e), Box::new(k));
                }
                Tok::Sym(":") => {
                    self.pos += 1;
                    let name = match self.next() {
                        Tok::Name(n) => n,
                        t => return Err(format!("<name> expected near {}", describe(&t))),
                    };
                    let args = self.args()?;
                    e = Expr::Method(Box::new(e), name.into(), args);
                }
                Tok::Sym("(") | Tok::Str(_) => {
                    let args = self.args()?;
                    e = Expr::Call(Box::new(e), args);
                }
                _ => return Ok(e),
            }
        }
    }

    fn args(&mut self) -> Result<Vec<Expr>, String> {
        if let Tok::Str(s) = self.peek().clone() {
            self.pos += 1;
            return Ok(vec![Expr::Str(s)]);
        }
        self.expect("(")?;
        let mut args = Vec::new();
        if !self.is_sym(")") {
            loop {
                args.push(self.expr(0)?);
                if !self.is_sym(",") {
                    break;
                }
                self.pos += 1;
            }
        }
        self.expect(")")?;
        Ok(args)
    }
}
