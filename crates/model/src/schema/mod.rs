//! Schemas as data, the way Kong defines them: typed fields with defaults and validators, and
//! entity-level checks. One schema drives validation, default filling, form-body coercion and
//! the `GET /schemas/...` description, so those never disagree.

mod check;
mod describe;
mod errors;
mod validate;

pub use check::{Check, EntityCheck, Matcher, is_nonempty, quoted_list};
pub use errors::{ErrorNode, FieldErrors};
pub use validate::{Mode, Validator, random_string};

use serde_json::Value;

pub type Map = serde_json::Map<String, Value>;

/// Checks a single value; returns Kong's message on failure.
pub type CustomCheck = fn(&Value) -> Result<(), String>;

/// The value type of a field.
#[derive(Debug, Clone)]
pub enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    Array(Box<Field>),
    /// An array whose duplicates are dropped.
    Set(Box<Field>),
    Map {
        keys: Box<Field>,
        values: Box<Field>,
    },
    Record(Record),
    /// A reference to another entity, stored as `{"id": ...}`.
    Foreign {
        reference: &'static str,
        cascade: bool,
    },
    /// Any JSON value (plugin configs with free-form parts).
    Json,
}

/// One field of a record.
#[derive(Debug, Clone)]
pub struct Field {
    pub kind: Kind,
    pub required: bool,
    /// `Some(Value::Null)` is an explicit null default.
    pub default: Option<Value>,
    pub unique: bool,
    /// Generated when absent: ids, timestamps, and for other strings Kong's random string
    /// (32 alphanumeric characters from a CSPRNG: credential keys and secrets).
    pub auto: bool,
    pub uuid: bool,
    pub timestamp: bool,
    /// Only used while writing (certificates' `snis`); never stored.
    pub transient: bool,
    /// A secret: redacted from logs and node information.
    pub sensitive: bool,
    /// Kong's `encrypted` marker (shown in schema descriptions); always also `sensitive`.
    pub encrypted: bool,
    pub checks: Vec<Check>,
    /// Replaces the message of any failed check, as Kong's `err`.
    pub err: Option<&'static str>,
    pub description: Option<&'static str>,
}

/// A set of named fields plus checks across them.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub fields: Vec<(&'static str, Field)>,
    pub checks: Vec<EntityCheck>,
    /// Kong's `custom_validator` on a record: runs on the whole value once its fields are
    /// valid; the message is the record field's own error.
    pub custom: Option<CustomCheck>,
    /// For a plugin's `config`: the `entity_checks` Kong declares on the plugin entity, over
    /// paths such as `config.allow`; they run on the whole plugin entity.
    pub plugin_checks: Vec<EntityCheck>,
    /// Kong's `shorthand_fields`: rewrites deprecated input fields into the current ones
    /// before the record is validated (rate-limiting's `redis_host` becomes `redis.host`).
    pub shorthands: Option<fn(&mut Map)>,
}

impl Record {
    pub fn new(fields: Vec<(&'static str, Field)>) -> Self {
        Record {
            fields,
            checks: Vec::new(),
            custom: None,
            plugin_checks: Vec::new(),
            shorthands: None,
        }
    }

    /// Kong's `shorthand_fields`, as one rewrite of the input.
    pub fn with_shorthands(mut self, expand: fn(&mut Map)) -> Self {
        self.shorthands = Some(expand);
        self
    }

    pub fn with_checks(mut self, checks: Vec<EntityCheck>) -> Self {
        self.checks = checks;
        self
    }

    /// Kong's `custom_validator` of the record.
    pub fn with_custom(mut self, check: CustomCheck) -> Self {
        self.custom = Some(check);
        self
    }

    /// Checks on the plugin entity that owns this `config` record (paths like `config.allow`).
    pub fn with_plugin_checks(mut self, checks: Vec<EntityCheck>) -> Self {
        self.plugin_checks = checks;
        self
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
    }
}

impl Field {
    fn of(kind: Kind) -> Self {
        Field {
            kind,
            required: false,
            default: None,
            unique: false,
            auto: false,
            uuid: false,
            timestamp: false,
            transient: false,
            sensitive: false,
            encrypted: false,
            checks: Vec::new(),
            err: None,
            description: None,
        }
    }

    pub fn string() -> Self {
        Self::of(Kind::String)
    }
    pub fn integer() -> Self {
        Self::of(Kind::Integer)
    }
    pub fn number() -> Self {
        Self::of(Kind::Number)
    }
    pub fn boolean() -> Self {
        Self::of(Kind::Boolean)
    }
    pub fn json() -> Self {
        Self::of(Kind::Json)
    }
    pub fn array(elements: Field) -> Self {
        Self::of(Kind::Array(Box::new(elements)))
    }
    pub fn set(elements: Field) -> Self {
        Self::of(Kind::Set(Box::new(elements)))
    }
    pub fn map(keys: Field, values: Field) -> Self {
        Self::of(Kind::Map {
            keys: Box::new(keys),
            values: Box::new(values),
        })
    }
    pub fn record(record: Record) -> Self {
        Self::of(Kind::Record(record))
    }
    pub fn foreign(reference: &'static str) -> Self {
        Self::of(Kind::Foreign {
            reference,
            cascade: false,
        })
    }
    /// A parent reference whose deletion deletes this entity.
    pub fn foreign_cascade(reference: &'static str) -> Self {
        Self::of(Kind::Foreign {
            reference,
            cascade: true,
        })
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }
    pub fn default_null(mut self) -> Self {
        self.default = Some(Value::Null);
        self
    }
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// A secret Kong marks `encrypted` (certificate keys, basic-auth passwords).
    pub fn encrypted(mut self) -> Self {
        self.sensitive = true;
        self.encrypted = true;
        self
    }
    /// Generated when absent (Kong's `auto = true`); see [`Field::auto`].
    pub fn auto(mut self) -> Self {
        self.auto = true;
        self
    }
    pub fn check(mut self, c: Check) -> Self {
        self.checks.push(c);
        self
    }
    pub fn custom(self, f: CustomCheck) -> Self {
        self.check(Check::Custom(f))
    }
    pub fn one_of<I, V>(self, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        self.check(Check::OneOf(values.into_iter().map(Into::into).collect()))
    }
    pub fn between(self, min: i64, max: i64) -> Self {
        self.check(Check::Between(min as f64, max as f64))
    }
    pub fn err(mut self, msg: &'static str) -> Self {
        self.err = Some(msg);
        self
    }
    pub fn description(mut self, text: &'static str) -> Self {
        self.description = Some(text);
        self
    }

    /// An auto-generated UUID primary key.
    pub fn id() -> Self {
        let mut f = Self::string();
        f.uuid = true;
        f.auto = true;
        f
    }
    /// An auto-generated timestamp in seconds.
    pub fn timestamp_s() -> Self {
        let mut f = Self::integer();
        f.timestamp = true;
        f.auto = true;
        f
    }
    /// An auto-generated timestamp in milliseconds (as a number with decimals).
    pub fn timestamp_ms() -> Self {
        let mut f = Self::number();
        f.timestamp = true;
        f.auto = true;
        f
    }
    /// A string that must be a UUID.
    pub fn uuid_string() -> Self {
        let mut f = Self::string();
        f.uuid = true;
        f
    }
}
