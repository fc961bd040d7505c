//! Query strings and form bodies as Kong's Lua sees them (`ngx.decode_args`): one entry per
//! name holding a string, `true` for a bare name, or the list of a repeated name; and their
//! encodings back (`ngx.encode_args`, and `kong.service.request.set_query`, which sorts).

use super::lua::{Table, Val};
use std::sync::Arc;

/// One value of a repeated argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Text(String),
    /// A bare name (`?flag`).
    Flag,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    One(Item),
    Many(Vec<Item>),
}

/// Arguments by name, each name once, in the order first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args(pub Vec<(String, Arg)>);

impl Args {
    /// `ngx.decode_args`: `+` is a space, `%XX` an escaped byte, repeated names make a list.
    pub fn decode(text: &str) -> Args {
        let mut args = Args::default();
        for part in text.split('&').filter(|p| !p.is_empty()) {
            let (name, item) = match part.split_once('=') {
                Some((k, v)) => (unescape(k), Item::Text(unescape(v))),
                None => (unescape(part), Item::Flag),
            };
            if name.is_empty() {
                continue;
            }
            args.push(name, item);
        }
        args
    }

    /// Adds a value after those a name already has.
    pub fn push(&mut self, name: String, item: Item) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some((_, arg)) => {
                let prev = std::mem::replace(arg, Arg::Many(Vec::new()));
                *arg = match prev {
                    Arg::One(first) => Arg::Many(vec![first, item]),
                    Arg::Many(mut all) => {
                        all.push(item);
                        Arg::Many(all)
                    }
                };
            }
            None => self.0.push((name, Arg::One(item))),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arg> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Sets a name's value (in place when it exists).
    pub fn set(&mut self, name: &str, value: Arg) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Arg> {
        let i = self.0.iter().position(|(k, _)| k == name)?;
        Some(self.0.remove(i).1)
    }

    /// Kong's `append_value`: a value joins those a name has, making a list.
    pub fn append(&mut self, name: &str, value: String) {
        let item = Item::Text(value);
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some((_, arg)) => {
                let prev = std::mem::replace(arg, Arg::Many(Vec::new()));
                *arg = match prev {
                    Arg::One(Item::Text(t)) => Arg::Many(vec![Item::Text(t), item]),
                    // A bare flag is `true` in Lua, not a string: append replaces it.
                    Arg::One(Item::Flag) => Arg::Many(vec![item]),
                    Arg::Many(mut all) => {
                        all.push(item);
                        Arg::Many(all)
                    }
                };
            }
            None => self.0.push((name.to_string(), Arg::Many(vec![item]))),
        }
    }

    /// Kong's `rename`: moves a value to a new name (overwriting it); true when it did.
    pub fn rename(&mut self, old: &str, new: &str) -> bool {
        if old == new {
            return false;
        }
        if self.get(new).is_some() {
            return match self.remove(old) {
                Some(v) => {
                    self.set(new, v);
                    true
                }
                None => false,
            };
        }
        // The new name takes the old one's place.
        match self.0.iter_mut().find(|(k, _)| k == old) {
            Some((k, _)) => {
                *k = new.to_string();
                true
            }
            None => false,
        }
    }

    /// `ngx.encode_args`, in this order.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (name, arg) in &self.0 {
            let part = encode_one(name, arg);
            if part.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&part);
        }
        out
    }

    /// `kong.service.request.set_query`: each name's part encoded, the parts sorted.
    pub fn encode_sorted(&self) -> String {
        let mut parts: Vec<String> = self.0.iter().map(|(k, v)| encode_one(k, v)).collect();
        parts.sort_unstable();
        parts.join("&")
    }

    /// The arguments as a Lua table (a template's `query_params`).
    pub fn to_val(&self) -> Val {
        let item = |i: &Item| match i {
            Item::Text(t) => Val::str(t),
            Item::Flag => Val::Bool(true),
        };
        Val::Table(Arc::new(Table {
            entries: self
                .0
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Arg::One(i) => item(i),
                        Arg::Many(all) => Val::Table(Arc::new(Table::list(all.iter().map(item)))),
                    };
                    (super::lua::Key::Str(k.clone()), v)
                })
                .collect(),
            header_keys: false,
        }))
    }
}

fn encode_one(name: &str, arg: &Arg) -> String {
    let key = escape(name);
    let item = |i: &Item| match i {
        Item::Text(t) => format!("{key}={}", escape(t)),
        Item::Flag => key.clone(),
    };
    match arg {
        Arg::One(i) => item(i),
        Arg::Many(all) => all.iter().map(item).collect::<Vec<_>>().join("&"),
    }
}

/// `ngx.escape_uri` for a URI component: all but `A-Za-z0-9-._~` as `%XX`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

fn unescape(s: &str) -> String {
    form_urlencoded::parse(format!("{s}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_encodes_like_ngx() {
        let mut a = Args::decode("b=2&a=x+y&flag&b=3&e=&=skip");
        assert_eq!(a.get("a"), Some(&Arg::One(Item::Text("x y".into()))));
        assert_eq!(a.get("flag"), Some(&Arg::One(Item::Flag)));
        assert_eq!(
            a.get("b"),
            Some(&Arg::Many(vec![
                Item::Text("2".into()),
                Item::Text("3".into())
            ]))
        );
        assert_eq!(a.encode(), "b=2&b=3&a=x%20y&flag&e=");
        assert_eq!(a.encode_sorted(), "a=x%20y&b=2&b=3&e=&flag");
        a.append("a", "z".into());
        a.append("n", "[1]".into());
        assert!(a.rename("n", "m"));
        assert!(!a.rename("none", "m"));
        assert_eq!(a.encode_sorted(), "a=x%20y&a=z&b=2&b=3&e=&flag&m=%5B1%5D");
    }
}
