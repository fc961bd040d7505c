//! Field validators and entity checks, with Kong's messages.

use super::{CustomCheck, FieldErrors, Map};
use serde_json::Value;

/// A check on one value; run in Kong's validator order after the type check.
#[derive(Debug, Clone)]
pub enum Check {
    /// The value must be null (Kong's `eq = null`): used to forbid a field in a context.
    EqNull,
    /// The value must differ from this one.
    Ne(Value),
    NotOneOf(Vec<Value>),
    OneOf(Vec<Value>),
    Gt(f64),
    Between(f64, f64),
    LenEq(usize),
    LenMin(usize),
    LenMax(usize),
    StartsWith(&'static str),
    Custom(CustomCheck),
    /// For sets: elements from different groups may not be mixed.
    MutuallyExclusiveSubsets(Vec<Vec<&'static str>>),
}

/// A condition on a field's value, used by conditional entity checks.
#[derive(Debug, Clone)]
pub enum Matcher {
    Eq(Value),
    OneOf(Vec<Value>),
    NotOneOf(Vec<Value>),
    /// The field must be non-null.
    Required,
    /// A set/array containing this element.
    Contains(&'static str),
    /// Every element is one of these.
    ElementsOneOf(Vec<&'static str>),
    /// No element is one of these.
    ElementsNotOneOf(Vec<&'static str>),
    LenEq(usize),
    /// Non-null and accepted by this check (Kong's `required = true, custom_validator = f`).
    Validated(CustomCheck),
}

/// A check across fields of a record.
#[derive(Debug, Clone)]
pub enum EntityCheck {
    AtLeastOneOf(Vec<&'static str>),
    OnlyOneOf(Vec<&'static str>),
    MutuallyRequired(Vec<&'static str>),
    MutuallyExclusive(Vec<&'static str>),
    Distinct(Vec<&'static str>),
    Conditional {
        if_field: &'static str,
        if_match: Matcher,
        then_field: &'static str,
        then_match: Matcher,
        then_err: Option<&'static str>,
    },
    ConditionalAtLeastOneOf {
        if_field: &'static str,
        if_match: Matcher,
        then_at_least_one_of: Vec<&'static str>,
        then_err: &'static str,
        else_match: Option<Matcher>,
        else_then_at_least_one_of: Vec<&'static str>,
        else_then_err: &'static str,
    },
    /// Runs only when its fields passed their own validation; the message goes to `@entity`.
    Custom {
        fields: Vec<&'static str>,
        check: fn(&Map) -> Result<(), String>,
    },
}

/// `'a', 'b', 'c'`, as Kong quotes field lists.
pub fn quoted_list(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plain_list(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Length as Kong counts it: characters for strings, elements for arrays and maps.
fn length(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(o) => Some(o.len()),
        _ => None,
    }
}

/// True for non-null values that are not empty strings, arrays or maps.
pub fn is_nonempty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

impl Check {
    /// Runs the check on a non-null value of the right type.
    pub fn run(&self, v: &Value) -> Result<(), String> {
        match self {
            Check::EqNull => {
                if v.is_null() {
                    Ok(())
                } else {
                    Err("value must be null".into())
                }
            }
            Check::Ne(w) => {
                if v != w {
                    Ok(())
                } else {
                    Err(format!(
                        "value must not be {}",
                        plain_list(std::slice::from_ref(w))
                    ))
                }
            }
            Check::NotOneOf(opts) => {
                if opts.contains(v) {
                    Err(format!("must not be one of: {}", plain_list(opts)))
                } else {
                    Ok(())
                }
            }
            Check::OneOf(opts) => {
                if opts.contains(v) {
                    Ok(())
                } else {
                    Err(format!("expected one of: {}", plain_list(opts)))
                }
            }
            Check::Gt(limit) => match v.as_f64() {
                Some(n) if n > *limit => Ok(()),
                _ => Err(format!("value must be greater than {}", fmt_num(*limit))),
            },
            Check::Between(lo, hi) => match v.as_f64() {
                Some(n) if n >= *lo && n <= *hi => Ok(()),
                _ => Err(format!(
                    "value should be between {} and {}",
                    fmt_num(*lo),
                    fmt_num(*hi)
                )),
            },
            Check::LenEq(n) => match length(v) {
                Some(l) if l == *n => Ok(()),
                _ => Err(format!("length must be {n}")),
            },
            Check::LenMin(n) => match length(v) {
                Some(l) if l >= *n => Ok(()),
                _ => Err(format!("length must be at least {n}")),
            },
            Check::LenMax(n) => match length(v) {
                Some(l) if l <= *n => Ok(()),
                _ => Err(format!("length must be at most {n}")),
            },
            Check::StartsWith(prefix) => match v.as_str() {
                Some(s) if s.starts_with(prefix) => Ok(()),
                _ => Err(format!("should start with: {prefix}")),
            },
            Check::Custom(f) => f(v),
            Check::MutuallyExclusiveSubsets(groups) => {
                let mut seen: Vec<&Vec<&str>> = Vec::new();
                for item in v.as_array().into_iter().flatten() {
                    let Some(s) = item.as_str() else { continue };
                    if let Some(g) = groups.iter().find(|g| g.contains(&s))
                        && !seen.iter().any(|x| std::ptr::eq(*x, g))
                    {
                        seen.push(g);
                    }
                }
                if seen.len() <= 1 {
                    Ok(())
                } else {
                    let sets: Vec<String> = seen
                        .iter()
                        .map(|g| format!("({})", quoted_list(g)))
                        .collect();
                    Err(format!(
                        "these sets are mutually exclusive: {}",
                        sets.join(", ")
                    ))
                }
            }
        }
    }

    /// The check as Kong's schema description shows it (`None` for checks that are code).
    pub fn describe(&self) -> Option<(&'static str, Value)> {
        Some(match self {
            Check::EqNull => ("eq", Value::Null),
            Check::Ne(v) => ("ne", v.clone()),
            Check::NotOneOf(v) => ("not_one_of", Value::Array(v.clone())),
            Check::OneOf(v) => ("one_of", Value::Array(v.clone())),
            Check::Gt(n) => ("gt", num(*n)),
            Check::Between(a, b) => ("between", Value::Array(vec![num(*a), num(*b)])),
            Check::LenEq(n) => ("len_eq", Value::from(*n)),
            Check::LenMin(n) => ("len_min", Value::from(*n)),
            Check::LenMax(n) => ("len_max", Value::from(*n)),
            Check::StartsWith(p) => ("starts_with", Value::from(*p)),
            Check::MutuallyExclusiveSubsets(g) => {
                ("mutually_exclusive_subsets", serde_json::json!(g))
            }
            Check::Custom(_) => return None,
        })
    }
}

fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}

impl Matcher {
    /// Whether the value (None/Null when absent) satisfies the matcher; the error says why not.
    pub fn test(&self, v: Option<&Value>) -> Result<(), String> {
        let v = v.unwrap_or(&Value::Null);
        let strs = || -> Vec<&str> {
            v.as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default()
        };
        match self {
            Matcher::Eq(w) => {
                if v == w {
                    Ok(())
                } else if w.is_null() {
                    Err("value must be null".into())
                } else {
                    Err(format!(
                        "value must be {}",
                        plain_list(std::slice::from_ref(w))
                    ))
                }
            }
            Matcher::OneOf(opts) => Check::OneOf(opts.clone()).run(v),
            Matcher::NotOneOf(opts) => Check::NotOneOf(opts.clone()).run(v),
            Matcher::Required => {
                if v.is_null() {
                    Err("required field missing".into())
                } else {
                    Ok(())
                }
            }
            Matcher::Contains(w) => {
                if strs().contains(w) {
                    Ok(())
                } else {
                    Err(format!("expected to contain: {w}"))
                }
            }
            Matcher::ElementsOneOf(opts) => {
                let items = strs();
                if !items.is_empty() && items.iter().all(|s| opts.contains(s)) {
                    Ok(())
                } else {
                    Err(format!("expected one of: {}", opts.join(", ")))
                }
            }
            Matcher::ElementsNotOneOf(opts) => {
                if strs().iter().any(|s| opts.contains(s)) {
                    Err(format!("must not be one of: {}", opts.join(", ")))
                } else {
                    Ok(())
                }
            }
            Matcher::Validated(check) => {
                if v.is_null() {
                    Err("required field missing".into())
                } else {
                    check(v)
                }
            }
            Matcher::LenEq(n) => {
                let len = if v.is_null() {
                    0
                } else {
                    length(v).unwrap_or(0)
                };
                if len == *n {
                    Ok(())
                } else {
                    Err(format!("length must be {n}"))
                }
            }
        }
    }
}

/// A field of `entity` by name, or by a dotted path into nested records (`config.allow`), as
/// Kong's entity checks name them.
fn lookup<'a>(entity: &'a Map, path: &str) -> Option<&'a Value> {
    if let Some(v) = entity.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut v = entity.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

impl EntityCheck {
    /// Runs the check; `failed` are fields that already have errors (their checks are skipped).
    pub fn run(&self, entity: &Map, errors: &mut FieldErrors) {
        let get = |f: &str| lookup(entity, f);
        let nonempty = |fs: &[&str]| fs.iter().filter(|f| is_nonempty(get(f))).count();
        match self {
            EntityCheck::AtLeastOneOf(fs) => {
                if nonempty(fs) == 0 {
                    errors.entity(format!(
                        "at least one of these fields must be non-empty: {}",
                        quoted_list(fs)
                    ));
                }
            }
            EntityCheck::OnlyOneOf(fs) => {
                if nonempty(fs) != 1 {
                    errors.entity(format!(
                        "exactly one of these fields must be non-empty: {}",
                        quoted_list(fs)
                    ));
                }
            }
            EntityCheck::MutuallyRequired(fs) => {
                let n = nonempty(fs);
                if n != 0 && n != fs.len() {
                    errors.entity(format!(
                        "all or none of these fields must be set: {}",
                        quoted_list(fs)
                    ));
                }
            }
            EntityCheck::MutuallyExclusive(fs) => {
                if nonempty(fs) > 1 {
                    errors.entity(format!(
                        "only one or none of these fields must be set: {}",
                        quoted_list(fs)
                    ));
                }
            }
            EntityCheck::Distinct(fs) => {
                let vals: Vec<&Value> = fs
                    .iter()
                    .filter_map(|f| get(f))
                    .filter(|v| !v.is_null())
                    .collect();
                let dup = vals
                    .iter()
                    .enumerate()
                    .any(|(i, a)| vals[i + 1..].contains(a));
                if dup {
                    errors.entity(format!(
                        "values of these fields must be distinct: {}",
                        quoted_list(fs)
                    ));
                }
            }
            EntityCheck::Conditional {
                if_field,
                if_match,
                then_field,
                then_match,
                then_err,
            } => {
                if errors.has(if_field) || if_match.test(get(if_field)).is_err() {
                    return;
                }
                if let Err(e) = then_match.test(get(then_field)) {
                    errors.field(then_field, then_err.map_or(e, str::to_string));
                    errors.entity(format!(
                        "failed conditional validation given value of field '{if_field}'"
                    ));
                }
            }
            EntityCheck::ConditionalAtLeastOneOf {
                if_field,
                if_match,
                then_at_least_one_of,
                then_err,
                else_match,
                else_then_at_least_one_of,
                else_then_err,
            } => {
                if errors.has(if_field) {
                    return;
                }
                let (fields, err) = if if_match.test(get(if_field)).is_ok() {
                    (then_at_least_one_of, then_err)
                } else if else_match
                    .as_ref()
                    .is_some_and(|m| m.test(get(if_field)).is_ok())
                {
                    (else_then_at_least_one_of, else_then_err)
                } else {
                    return;
                };
                if nonempty(fields) == 0 {
                    errors.entity(err.replace("%s", &quoted_list(fields)));
                }
            }
            EntityCheck::Custom { fields, check } => {
                if fields.iter().any(|f| errors.has(f)) {
                    return;
                }
                if let Err(e) = check(entity) {
                    errors.entity(e);
                }
            }
        }
    }

    /// Kong's description of the check for `GET /schemas/...` (custom checks are code, omitted).
    pub fn describe(&self) -> Option<Value> {
        use serde_json::json;
        Some(match self {
            EntityCheck::AtLeastOneOf(f) => json!({"at_least_one_of": f}),
            EntityCheck::OnlyOneOf(f) => json!({"only_one_of": f}),
            EntityCheck::MutuallyRequired(f) => json!({"mutually_required": f}),
            EntityCheck::MutuallyExclusive(f) => json!({"mutually_exclusive": f}),
            EntityCheck::Distinct(f) => json!({"distinct": f}),
            EntityCheck::Conditional {
                if_field,
                then_field,
                ..
            } => json!({"conditional": {"if_field": if_field, "then_field": then_field}}),
            EntityCheck::ConditionalAtLeastOneOf {
                if_field,
                then_at_least_one_of,
                ..
            } => {
                json!({"conditional_at_least_one_of": {"if_field": if_field, "then_at_least_one_of": then_at_least_one_of}})
            }
            EntityCheck::Custom { fields, .. } => {
                json!({"custom_entity_check": {"field_sources": fields}})
            }
        })
    }
}
