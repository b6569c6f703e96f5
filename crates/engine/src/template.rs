//! `inspect --format`: the part of Go's text/template that scripts use with `docker inspect`.
//! Text is copied; each action `{{.A.B}}` is a path into the inspect JSON (object keys, or
//! array indexes as numbers), `{{.}}` the whole value, `{{json .A}}` the value as JSON.
//! Strings print bare, other scalars as JSON, objects and arrays as JSON too (Go would print
//! its own map syntax, which nothing can parse). A missing key is an error naming it.

use serde_json::Value;

use crate::error::{Error, Result};

/// Render `template` against `v`.
pub fn render(template: &str, v: &Value) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| bad(template, "an action is not closed with }}"))?;
        out.push_str(&action(template, after[..close].trim(), v)?);
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err(bad(template, "}} without {{"));
    }
    out.push_str(rest);
    Ok(out)
}

fn bad(template: &str, why: &str) -> Error {
    Error::Invalid(format!("template {template:?}: {why}"))
}

fn action(template: &str, a: &str, v: &Value) -> Result<String> {
    let (json, path) = match a.split_once(char::is_whitespace) {
        Some(("json", p)) => (true, p.trim()),
        Some((f, _)) => return Err(bad(template, &format!("unknown function {f:?} (only json is supported)"))),
        None => (false, a),
    };
    let found = lookup(template, path, v)?;
    Ok(match found {
        Value::String(s) if !json => s.clone(),
        other => other.to_string(),
    })
}

/// `.A.B.0` into `v`.
fn lookup<'a>(template: &str, path: &str, v: &'a Value) -> Result<&'a Value> {
    let Some(rest) = path.strip_prefix('.') else {
        return Err(bad(template, &format!("{path:?} is not a field path such as .State.Pid")));
    };
    let mut cur = v;
    let mut walked = String::new();
    for key in rest.split('.').filter(|k| !k.is_empty()) {
        walked.push('.');
        walked.push_str(key);
        cur = match cur {
            Value::Object(m) => m.get(key),
            Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        }
        .ok_or_else(|| match cur {
            Value::Null => bad(template, &format!("{walked}: {} is null", &walked[..walked.len() - key.len() - 1])),
            _ => bad(template, &format!("no field {walked}")),
        })?;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_json_and_text() {
        let v = json!({"Name": "c2", "State": {"Pid": 42, "Running": true}, "Command": ["sleep", "inf"],
            "Network": {"allocation": {"container_ip": "192.168.2.2"}}, "Gone": null});
        assert_eq!(render("{{.Network.allocation.container_ip}}", &v).unwrap(), "192.168.2.2");
        assert_eq!(render("{{ .Name }} pid={{.State.Pid}} {{.State.Running}}\n", &v).unwrap(), "c2 pid=42 true\n");
        assert_eq!(render("{{json .Name}} {{.Command.1}}", &v).unwrap(), "\"c2\" inf");
        assert_eq!(render("{{json .State}}", &v).unwrap(), r#"{"Pid":42,"Running":true}"#);
        assert_eq!(render("plain", &v).unwrap(), "plain");
    }

    #[test]
    fn clear_errors() {
        let v = json!({"State": {"Pid": 1}, "Network": null});
        let e = render("{{.State.Pdi}}", &v).unwrap_err().to_string();
        assert!(e.contains("no field .State.Pdi"), "{e}");
        let e = render("{{.Network.allocation.container_ip}}", &v).unwrap_err().to_string();
        assert!(e.contains(".Network is null"), "{e}");
        assert!(render("{{.State", &v).is_err());
        assert!(render("{{upper .State}}", &v).unwrap_err().to_string().contains("unknown function"));
        assert!(render("{{State}}", &v).is_err());
    }
}
