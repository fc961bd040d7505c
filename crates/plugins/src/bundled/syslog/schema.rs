//! syslog's config (Kong 3.x `kong/plugins/syslog/schema.lua`).

use super::super::log_schema;
use silverback_model::schema::{Field, Record};

/// Severities from the most to the least verbose, with their syslog numbers.
pub const SEVERITIES: [(&str, u8); 8] = [
    ("debug", 7),
    ("info", 6),
    ("notice", 5),
    ("warning", 4),
    ("err", 3),
    ("crit", 2),
    ("alert", 1),
    ("emerg", 0),
];

/// Facilities with their syslog numbers.
pub const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

fn severity() -> Field {
    Field::string()
        .default("info")
        .required()
        .one_of(SEVERITIES.map(|(n, _)| n))
}

pub fn config() -> Record {
    Record::new(vec![
        ("log_level", severity()),
        ("successful_severity", severity()),
        ("client_errors_severity", severity()),
        ("server_errors_severity", severity()),
        ("custom_fields_by_lua", log_schema::custom_fields_by_lua()),
        (
            "facility",
            Field::string().default("user").required().one_of([
                "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news",
                "syslog", "user", "uucp", "local0", "local1", "local2", "local3", "local4",
                "local5", "local6", "local7",
            ]),
        ),
    ])
}
