use super::*;
use serde_json::json;

/// The value of `v` in a one-key document.
fn value(yaml_value: &str) -> Value {
    let doc = parse(&format!("v: {yaml_value}\n")).unwrap();
    doc["v"].clone()
}

fn fails(yaml: &str) -> String {
    parse(yaml).unwrap_err()
}

#[test]
fn booleans_are_lyamls_only() {
    for t in [
        "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON",
    ] {
        assert_eq!(value(t), json!(true), "{t}");
    }
    for f in [
        "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF",
    ] {
        assert_eq!(value(f), json!(false), "{f}");
    }
    // YAML 1.1 has these too; lyaml does not.
    for s in ["y", "Y", "n", "N", "yEs", "tRUE", "oN", "nO"] {
        assert_eq!(value(s), json!(s), "{s}");
    }
}

#[test]
fn nulls() {
    for n in ["~", "null", "Null", "NULL", ""] {
        assert_eq!(value(n), Value::Null, "{n:?}");
    }
    for s in ["nULL", "none", "None", "nil"] {
        assert_eq!(value(s), json!(s), "{s}");
    }
    let doc = parse("a:\nb: ''\nc: \"~\"\n").unwrap();
    assert_eq!(doc, json!({"a": null, "b": "", "c": "~"}));
}

#[test]
fn integers() {
    let cases = [
        ("0", json!(0)),
        ("42", json!(42)),
        ("-17", json!(-17)),
        ("+5", json!(5)),
        ("1_", json!(1)),
        ("_1", json!(1)),
        ("1_000", json!(1000)),
        // Leading zero: octal, unless a digit is 8 or 9.
        ("010", json!(8)),
        ("-010", json!(-8)),
        ("0_7", json!(7)),
        ("00", json!(0)),
        ("09", json!(9)),
        ("0xff", json!(255)),
        ("-0x10", json!(-16)),
        ("0x_F_F", json!(255)),
        ("0b1010", json!(10)),
        ("0b11", json!(3)),
        // Base 60.
        ("1:30", json!(90)),
        ("190:20:30", json!(685_230)),
        ("-1:00", json!(-60)),
        ("9223372036854775807", json!(i64::MAX)),
    ];
    for (text, want) in cases {
        assert_eq!(value(text), want, "{text}");
    }
    assert_eq!(value("99999999999999999999"), json!(1e20));
    // Not numbers for lyaml.
    for s in ["0o17", "0X1F", "0b1", "0b", "0x", "_", "a:1", "1-2", "12a"] {
        assert_eq!(value(s), json!(s), "{s}");
    }
}

/// Every number form here was checked against lyaml 6.2.8's `implicit.lua` run on LuaJIT.
#[test]
fn floats() {
    let cases = [
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1E-2", 0.01),
        ("+1.5e+2", 150.0),
        ("1_000.5", 1000.5),
        ("3.0", 3.0),
        // LuaJIT's tonumber reads hex with a fraction or an `e` digit.
        ("0x1.8", 1.5),
        ("0X1E", 30.0),
        ("0x1p4.", f64::NAN),
        ("1:30.5", 90.5),
        ("-1:30.5", -90.5),
    ];
    for (text, want) in cases {
        if want.is_nan() {
            assert!(!value(text).is_number(), "{text}");
            continue;
        }
        assert_eq!(value(text), json!(want), "{text}");
    }
    // No JSON form: the text stays.
    for s in [".inf", "-.Inf", ".NaN", "1e999"] {
        assert_eq!(value(s), json!(s), "{s}");
    }
    for s in ["1.2.3", "10.0.0.1", "e5", "1e", ".", "inf", "nan", "1.5x"] {
        assert_eq!(value(s), json!(s), "{s}");
    }
}

#[test]
fn only_plain_scalars_are_resolved() {
    let doc = parse("a: 'yes'\nb: \"12\"\nc: |\n  true\nd: >\n  1.5\ne: ! 12\n").unwrap();
    assert_eq!(
        doc,
        json!({"a": "yes", "b": "12", "c": "true\n", "d": "1.5\n", "e": 12})
    );
}

#[test]
fn explicit_tags_convert_any_style() {
    let doc = parse(
        "s: !!str yes\ni: !!int \"0x10\"\nf: !!float 3\nb: !!bool y\nn: !!null whatever\nx: !!str\nsx: !!int 1:30\n",
    )
    .unwrap();
    assert_eq!(
        doc,
        json!({"s": "yes", "i": 16, "f": 3.0, "b": true, "n": null, "x": "", "sx": 90})
    );
    assert!(doc["f"].is_f64());
    assert!(fails("v: !!int 1.5\n").contains("invalid 'tag:yaml.org,2002:int' value: '1.5'"));
    assert!(fails("v: !!bool maybe\n").contains("line 1"));
    assert!(fails("v: !!float 1:30\n").contains("invalid 'tag:yaml.org,2002:float'"));
    // Other tags are ignored.
    assert_eq!(value("!custom 5"), json!(5));
    assert_eq!(value("!!binary yes"), json!(true));
}

#[test]
fn trailing_underscores_in_octal_and_binary_fail_as_in_lyaml() {
    assert!(fails("v: 07_\n").contains("'07_'"));
    assert!(fails("v: 0b10_\n").contains("'0b10_'"));
    assert_eq!(value("7_"), json!(7));
    assert_eq!(value("0x1_"), json!(1));
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let doc = parse(
        r#"
base: &base {host: example.com, port: 80}
list: &list [a, b]
s1:
  <<: *base
  port: 8080
s2:
  port: 1
  <<: [*base, {retries: 3}]
s3: {"<<": *base}
s4: {!!merge x: {k: v}}
copy: *list
n: &n 010
m: *n
"#,
    )
    .unwrap();
    assert_eq!(doc["s1"], json!({"host": "example.com", "port": 8080}));
    assert_eq!(
        doc["s2"],
        json!({"port": 1, "host": "example.com", "retries": 3})
    );
    assert_eq!(doc["s3"], json!({"host": "example.com", "port": 80}));
    assert_eq!(doc["s4"], json!({"k": "v"}));
    assert_eq!(doc["copy"], json!(["a", "b"]));
    assert_eq!(doc["m"], json!(8));
    // With two merges the first wins; explicit keys win wherever they are.
    let doc = parse("a: &a {x: 1, y: 1}\nb:\n  <<: *a\n  <<: {x: 2, z: 2}\n  y: 3\n").unwrap();
    assert_eq!(doc["b"], json!({"x": 1, "y": 3, "z": 2}));
    assert!(fails("a: {<<: 1}\n").contains("invalid '<<' merge event"));
    assert!(fails("a: {<<: [1]}\n").contains("invalid '<<' sequence element 1"));
    assert!(fails("a: *nope\n").contains("line 1"));
}

#[test]
fn keys_duplicates_and_documents() {
    // Later keys win; non-string keys keep their text.
    let doc = parse("a: 1\na: 2\n1: x\ntrue: y\n~: z\n").unwrap();
    assert_eq!(doc, json!({"a": 2, "1": "x", "true": "y", "~": "z"}));
    // The first document; later ones must still parse.
    assert_eq!(parse("a: 1\n---\nb: 2\n").unwrap(), json!({"a": 1}));
    assert!(parse("a: 1\n---\nb: [\n").is_err());
    assert_eq!(parse("").unwrap(), Value::Null);
    // As libyaml: a block scalar ending the input has no line feed added.
    assert_eq!(parse("k: |\n  end").unwrap(), json!({"k": "end"}));
    assert_eq!(parse("# only a comment\n").unwrap(), Value::Null);
    assert!(fails("? [a]\n: 1\n").contains("must be a scalar"));
}

#[test]
fn limits() {
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    assert!(fails(&deep).contains("nesting"));
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ["b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g"])
    {
        bomb.push_str(&format!(
            "{i}: &{i} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    assert!(fails(&bomb).contains("aliases expand"));
}
