//! The Lua expressions Kong's templates hold (`$(headers["x-id"] or "none")`): a parser and
//! evaluator for the expression part of Lua 5.1 (literals, names, indexing, calls, method
//! calls, `not`, `#`, arithmetic, `..`, comparisons, `and` / `or`), over read-only values and
//! a few of the sandbox's functions (`type`, `tostring`, `tonumber`, `string.*`). Statements,
//! function definitions and table constructors are not expressions Kong's templates need.

mod parse;

pub use parse::parse;

use std::fmt::Write as _;
use std::sync::Arc;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Nil,
    Bool(bool),
    Num(f64),
    Str(Arc<str>),
    Name(String),
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Expr>),
    Method(Box<Expr>, Arc<str>, Vec<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Len(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Concat,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A value, as Lua sees it.
#[derive(Debug, Clone)]
pub enum Val {
    Nil,
    Bool(bool),
    Num(f64),
    Str(Arc<str>),
    Table(Arc<Table>),
    Func(Builtin),
}

impl Val {
    pub fn str(s: &str) -> Val {
        Val::Str(Arc::from(s))
    }

    pub fn truthy(&self) -> bool {
        !matches!(self, Val::Nil | Val::Bool(false))
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::Nil => "nil",
            Val::Bool(_) => "boolean",
            Val::Num(_) => "number",
            Val::Str(_) => "string",
            Val::Table(_) => "table",
            Val::Func(_) => "function",
        }
    }

    /// Lua's `tostring`.
    pub fn to_text(&self) -> String {
        match self {
            Val::Nil => "nil".into(),
            Val::Bool(b) => b.to_string(),
            Val::Num(n) => number_text(*n),
            Val::Str(s) => s.to_string(),
            Val::Table(t) => format!("table: {:p}", Arc::as_ptr(t)),
            Val::Func(f) => format!("function: builtin: {f:?}"),
        }
    }

    fn to_number(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            Val::Str(s) => parse_number(s),
            _ => None,
        }
    }
}

/// A table key: Lua keeps numbers and strings apart (`t[1]` is not `t["1"]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Num(f64),
    Str(String),
}

/// A read-only table.
#[derive(Debug, Default)]
pub struct Table {
    pub entries: Vec<(Key, Val)>,
    /// Keys are looked up as nginx looks up request headers: any case, `_` for `-`.
    pub header_keys: bool,
}

impl Table {
    pub fn list(items: impl IntoIterator<Item = Val>) -> Table {
        Table {
            entries: items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Key::Num((i + 1) as f64), v))
                .collect(),
            header_keys: false,
        }
    }

    fn get(&self, key: &Val) -> Val {
        let found = match key {
            Val::Num(n) => self.entries.iter().find(|(k, _)| *k == Key::Num(*n)),
            Val::Str(s) if self.header_keys => {
                let wanted = crate::pdk::header_key(s);
                self.entries
                    .iter()
                    .find(|(k, _)| matches!(k, Key::Str(k) if *k == wanted))
            }
            Val::Str(s) => self
                .entries
                .iter()
                .find(|(k, _)| matches!(k, Key::Str(k) if **k == **s)),
            _ => None,
        };
        found.map_or(Val::Nil, |(_, v)| v.clone())
    }

    /// Lua's `#`: the length of the sequence 1..n.
    fn border(&self) -> usize {
        let mut n = 0;
        while self
            .entries
            .iter()
            .any(|(k, _)| *k == Key::Num((n + 1) as f64))
        {
            n += 1;
        }
        n
    }
}

/// The sandbox functions templates may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Type,
    ToString,
    ToNumber,
    Lower,
    Upper,
    Len,
    Sub,
    Rep,
    Reverse,
}

/// Where names come from: the template's environment.
pub trait Globals {
    fn global(&mut self, name: &str) -> Val;
}

/// The `string` table, also what strings index (`s:lower()`).
pub fn string_table() -> Val {
    let f = |name: &str, b| (Key::Str(name.into()), Val::Func(b));
    Val::Table(Arc::new(Table {
        entries: vec![
            f("lower", Builtin::Lower),
            f("upper", Builtin::Upper),
            f("len", Builtin::Len),
            f("sub", Builtin::Sub),
            f("rep", Builtin::Rep),
            f("reverse", Builtin::Reverse),
        ],
        header_keys: false,
    }))
}

/// The functions the sandbox offers as globals.
pub fn builtin_global(name: &str) -> Option<Val> {
    Some(match name {
        "type" => Val::Func(Builtin::Type),
        "tostring" => Val::Func(Builtin::ToString),
        "tonumber" => Val::Func(Builtin::ToNumber),
        "string" => string_table(),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Numbers

/// Lua's `tonumber` on text: decimal or hexadecimal, surrounding spaces allowed.
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()? as f64
    } else {
        let ok = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            && body
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit() || b == b'.');
        if !ok {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    Some(if neg { -value } else { value })
}

/// A number as Lua prints it (`%.14g`).
pub fn number_text(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.into();
    }
    if n == n.trunc() && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    // 14 significant digits, then the shorter of fixed and exponent notation, as %g does.
    let sci = format!("{n:.13e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..14).contains(&exp) {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = usize::try_from(13 - exp).unwrap_or(0);
    trim_zeros(&format!("{n:.decimals$}")).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

/// Evaluates an expression; errors are Lua's runtime errors.
pub fn eval(e: &Expr, g: &mut dyn Globals) -> Result<Val, String> {
    Ok(match e {
        Expr::Nil => Val::Nil,
        Expr::Bool(b) => Val::Bool(*b),
        Expr::Num(n) => Val::Num(*n),
        Expr::Str(s) => Val::Str(s.clone()),
        Expr::Name(n) => g.global(n),
        Expr::Index(t, k) => {
            let t = eval(t, g)?;
            let k = eval(k, g)?;
            index(&t, &k)?
        }
        Expr::Call(f, args) => {
            let f = eval(f, g)?;
            let args = args
                .iter()
                .map(|a| eval(a, g))
                .collect::<Result<Vec<_>, _>>()?;
            call(&f, &args)?
        }
        Expr::Method(obj, name, args) => {
            let obj = eval(obj, g)?;
            let f = index(&obj, &Val::Str(name.clone()))?;
            let mut all = vec![obj];
            for a in args {
                all.push(eval(a, g)?);
            }
            call(&f, &all)?
        }
        Expr::Not(x) => Val::Bool(!eval(x, g)?.truthy()),
        Expr::Neg(x) => {
            let v = eval(x, g)?;
            Val::Num(-arith_operand(&v)?)
        }
        Expr::Len(x) => match eval(x, g)? {
            Val::Str(s) => Val::Num(s.len() as f64),
            Val::Table(t) => Val::Num(t.border() as f64),
            v => {
                return Err(format!(
                    "attempt to get length of a {} value",
                    v.type_name()
                ));
            }
        },
        Expr::And(a, b) => {
            let a = eval(a, g)?;
            if a.truthy() { eval(b, g)? } else { a }
        }
        Expr::Or(a, b) => {
            let a = eval(a, g)?;
            if a.truthy() { a } else { eval(b, g)? }
        }
        Expr::Binary(op, a, b) => {
            let a = eval(a, g)?;
            let b = eval(b, g)?;
            binary_op(*op, &a, &b)?
        }
    })
}

fn index(t: &Val, k: &Val) -> Result<Val, String> {
    match t {
        Val::Table(t) => Ok(t.get(k)),
        Val::Str(_) => match string_table() {
            Val::Table(st) => Ok(st.get(k)),
            _ => Ok(Val::Nil),
        },
        v => Err(format!("attempt to index a {} value", v.type_name())),
    }
}

fn arith_operand(v: &Val) -> Result<f64, String> {
    v.to_number()
        .ok_or_else(|| format!("attempt to perform arithmetic on a {} value", v.type_name()))
}

fn concat_operand(v: &Val) -> Result<String, String> {
    match v {
        Val::Str(s) => Ok(s.to_string()),
        Val::Num(n) => Ok(number_text(*n)),
        v => Err(format!("attempt to concatenate a {} value", v.type_name())),
    }
}

fn equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Nil, Val::Nil) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Table(x), Val::Table(y)) => Arc::ptr_eq(x, y),
        (Val::Func(x), Val::Func(y)) => x == y,
        _ => false,
    }
}

fn binary_op(op: BinOp, a: &Val, b: &Val) -> Result<Val, String> {
    let num = |f: fn(f64, f64) -> f64| -> Result<Val, String> {
        Ok(Val::Num(f(arith_operand(a)?, arith_operand(b)?)))
    };
    let order = || -> Result<std::cmp::Ordering, String> {
        match (a, b) {
            (Val::Num(x), Val::Num(y)) => x.partial_cmp(y).ok_or_else(|| "nan".to_string()),
            (Val::Str(x), Val::Str(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
            _ => Err(format!(
                "attempt to compare {} with {}",
                a.type_name(),
                b.type_name()
            )),
        }
    };
    match op {
        BinOp::Add => num(|x, y| x + y),
        BinOp::Sub => num(|x, y| x - y),
        BinOp::Mul => num(|x, y| x * y),
        BinOp::Div => num(|x, y| x / y),
        BinOp::Mod => num(|x, y| x - (x / y).floor() * y),
        BinOp::Pow => num(f64::powf),
        BinOp::Concat => {
            let mut s = concat_operand(a)?;
            s.push_str(&concat_operand(b)?);
            Ok(Val::Str(Arc::from(s)))
        }
        BinOp::Eq => Ok(Val::Bool(equal(a, b))),
        BinOp::Ne => Ok(Val::Bool(!equal(a, b))),
        BinOp::Lt => Ok(Val::Bool(order()?.is_lt())),
        BinOp::Le => Ok(Val::Bool(order()?.is_le())),
        BinOp::Gt => Ok(Val::Bool(order()?.is_gt())),
        BinOp::Ge => Ok(Val::Bool(order()?.is_ge())),
    }
}

fn call(f: &Val, args: &[Val]) -> Result<Val, String> {
    let Val::Func(f) = f else {
        return Err(format!("attempt to call a {} value", f.type_name()));
    };
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Val::Nil);
    let text = |i: usize, name: &str| -> Result<String, String> {
        match arg(i) {
            Val::Str(s) => Ok(s.to_string()),
            Val::Num(n) => Ok(number_text(n)),
            v => Err(format!(
                "bad argument #{} to '{name}' (string expected, got {})",
                i + 1,
                v.type_name()
            )),
        }
    };
    let int = |i: usize, name: &str, default: Option<i64>| -> Result<i64, String> {
        match (arg(i).to_number(), default) {
            (Some(n), _) => Ok(n as i64),
            (None, Some(d)) if matches!(arg(i), Val::Nil) => Ok(d),
            _ => Err(format!(
                "bad argument #{} to '{name}' (number expected)",
                i + 1
            )),
        }
    };
    Ok(match f {
        Builtin::Type => {
            if args.is_empty() {
                return Err("bad argument #1 to 'type' (value expected)".into());
            }
            Val::str(arg(0).type_name())
        }
        Builtin::ToString => Val::str(&arg(0).to_text()),
        Builtin::ToNumber => arg(0).to_number().map_or(Val::Nil, Val::Num),
        Builtin::Lower => Val::str(&text(0, "lower")?.to_ascii_lowercase()),
        Builtin::Upper => Val::str(&text(0, "upper")?.to_ascii_uppercase()),
        Builtin::Len => Val::Num(text(0, "len")?.len() as f64),
        Builtin::Reverse => {
            let mut b = text(0, "reverse")?.into_bytes();
            b.reverse();
            Val::str(&String::from_utf8_lossy(&b))
        }
        Builtin::Rep => {
            let s = text(0, "rep")?;
            let n = int(1, "rep", None)?;
            Val::str(&s.repeat(usize::try_from(n).unwrap_or(0).min(1 << 16)))
        }
        Builtin::Sub => {
            let s = text(0, "sub")?;
            let len = s.len() as i64;
            let from = int(1, "sub", Some(1))?;
            let to = int(2, "sub", Some(-1))?;
            // Lua's rules for negative and out-of-range positions.
            let pos = |p: i64| if p < 0 { (len + p + 1).max(0) } else { p };
            let start = pos(from).max(1);
            let end = pos(to).min(len);
            if start > end {
                Val::str("")
            } else {
                let bytes = s.as_bytes();
                let slice = bytes
                    .get(usize::try_from(start - 1).unwrap_or(0)..usize::try_from(end).unwrap_or(0))
                    .unwrap_or_default();
                Val::str(&String::from_utf8_lossy(slice))
            }
        }
    })
}

/// Writes `v` as a template renders it: `tostring(v or '')`.
pub fn render_into(out: &mut String, v: &Val) {
    match v {
        Val::Nil | Val::Bool(false) => {}
        Val::Str(s) => out.push_str(s),
        other => {
            let _ = write!(out, "{}", other.to_text());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Env;
    impl Globals for Env {
        fn global(&mut self, name: &str) -> Val {
            match name {
                "headers" => Val::Table(Arc::new(Table {
                    entries: vec![
                        (Key::Str("x-a".into()), Val::str("1")),
                        (
                            Key::Str("x-many".into()),
                            Val::Table(Arc::new(Table::list([Val::str("a"), Val::str("b")]))),
                        ),
                    ],
                    header_keys: true,
                })),
                n => builtin_global(n).unwrap_or(Val::Nil),
            }
        }
    }

    fn run(src: &str) -> Result<String, String> {
        let e = parse(src)?;
        let v = eval(&e, &mut Env)?;
        let mut s = String::new();
        render_into(&mut s, &v);
        Ok(s)
    }

    #[test]
    fn expressions_like_lua() {
        assert_eq!(run("headers.x_a").unwrap(), "1");
        assert_eq!(run("headers['X-A']").unwrap(), "1");
        assert_eq!(run("headers.none or 'default'").unwrap(), "default");
        assert_eq!(run("headers.none").unwrap(), "");
        assert_eq!(run("10 * headers['x-a']").unwrap(), "10");
        assert_eq!(run("'$(x)'").unwrap(), "$(x)");
        assert_eq!(run("[[a]] .. 1 .. \"b\"").unwrap(), "a1b");
        assert_eq!(
            run("type(headers['x-many']) == 'table' and headers['x-many'][1] .. '-first' or 'no'")
                .unwrap(),
            "a-first"
        );
        assert_eq!(run("#headers['x-many']").unwrap(), "2");
        assert_eq!(run("('AbC'):lower()").unwrap(), "abc");
        assert_eq!(run("string.sub('hello', 2, -2)").unwrap(), "ell");
        assert_eq!(run("1 / 4").unwrap(), "0.25");
        assert_eq!(run("2 ^ 0.5").unwrap(), "1.4142135623731");
        assert_eq!(run("not nil").unwrap(), "true");
        assert_eq!(run("1 + 2 * 3 == 7").unwrap(), "true");
        assert!(run("10 * headers.none").is_err());
        assert!(run("foo(1)").is_err());
        assert!(run("headers.none.deeper").is_err());
        assert!(parse("uri_captures user2").is_err());
        assert!(parse("shared.written = true").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn numbers_print_like_lua() {
        assert_eq!(number_text(200.0), "200");
        assert_eq!(number_text(-1.5), "-1.5");
        assert_eq!(number_text(1e20), "1e+20");
        assert_eq!(number_text(0.1), "0.1");
        assert_eq!(number_text(1.0 / 3.0), "0.33333333333333");
        assert_eq!(parse_number(" 0x10 "), Some(16.0));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number(""), None);
    }
}
