//! A decoded value as JSON text, exactly as Python writes it with
//! `json.dumps(value, ensure_ascii=False, sort_keys=True)`: `", "` and `": "` separators, keys in
//! code-point order (the UTF-8 byte order of `String`), and only `"`, `\` and the control
//! characters escaped (`\b \f \n \r \t` by name, the rest as lower-case `\u00xx`). A vendor's lead
//! stores an intent's body so; writing it here spares Python a decode and a dump per lead.

use super::Value;

/// The JSON text of `value`; None when it holds bytes (JSON has none: Python refuses them too).
pub fn to_json(value: &Value) -> Option<String> {
    let mut out = String::new();
    write(value, &mut out)?;
    Some(out)
}

fn write(value: &Value, out: &mut String) -> Option<()> {
    match value {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::UInt(u) => out.push_str(&u.to_string()),
        Value::NInt(i) => out.push_str(&i.to_string()),
        Value::Str(s) => write_str(s, out),
        Value::Bin(_) => return None,
        Value::Array(items) => {
            out.push('[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let mut sorted: Vec<&(String, Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (k, (key, item)) in sorted.into_iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                write_str(key, out);
                out.push_str(": ");
                write(item, out)?;
            }
            out.push('}');
        }
    }
    Some(())
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> Value {
        Value::Str(t.to_owned())
    }

    #[test]
    fn as_python_writes_it() {
        let v = Value::Map(vec![
            ("text".into(), s("Need ?taxi \"now\"\n\u{1}é\u{7f}")),
            (
                "a".into(),
                Value::Array(vec![
                    Value::UInt(7),
                    Value::NInt(-3),
                    Value::Nil,
                    Value::Bool(true),
                ]),
            ),
            ("empty".into(), Value::Map(vec![])),
            ("list".into(), Value::Array(vec![])),
        ]);
        assert_eq!(
            to_json(&v).as_deref(),
            Some(r#"{"a": [7, -3, null, true], "empty": {}, "list": [], "text": "Need ?taxi \"now\"\n\u0001é"#
                .to_owned()
                + "\u{7f}\"}")
                .as_deref()
        );
        assert_eq!(to_json(&Value::Array(vec![Value::Bin(vec![1])])), None);
    }
}
