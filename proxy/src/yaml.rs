//! A small YAML reader for proxy configs (Traefik's file provider, Envoy's
//! bootstrap): block mappings and sequences, flow `{...}` and `[...]`
//! collections, plain, single- and double-quoted scalars, `|`/`>` block
//! scalars and comments, into a [`serde_json::Value`] that the config
//! walkers share with TOML and JSON input. Anchors, aliases, tags and
//! multi-document streams beyond the first document are not followed (an
//! alias stays the string `*name`). Pure and total: any input gives a value.

use serde_json::{Map, Value};

/// The deepest nesting followed; deeper blocks are dropped.
const MAX_DEPTH: usize = 64;

/// Parses YAML text into a JSON value (`Null` for an empty document).
pub fn parse(text: &str) -> Value {
    let mut lines = Vec::new();
    for raw in text.lines() {
        let line = strip_comment(raw.trim_end_matches('\r'));
        let trimmed = line.trim_start();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            if lines.is_empty() {
                continue;
            }
            break;
        }
        if trimmed == "..." {
            break;
        }
        lines.push(line);
    }
    let mut at = 0;
    block(&lines, &mut at, 0, 0)
}

/// Cuts a ` #` comment that is not inside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        prev = c;
    }
    line.trim_end()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The next non-blank line at or after `at`.
fn next(lines: &[&str], at: usize) -> Option<usize> {
    (at..lines.len()).find(|i| !lines[*i].trim().is_empty())
}

/// Parses the block whose lines are indented at least `min`.
fn block(lines: &[&str], at: &mut usize, min: usize, depth: usize) -> Value {
    let Some(i) = next(lines, *at) else {
        *at = lines.len();
        return Value::Null;
    };
    let ind = indent(lines[i]);
    if ind < min || depth > MAX_DEPTH {
        return Value::Null;
    }
    let first = lines[i].trim_start();
    if first == "-" || first.starts_with("- ") {
        sequence(lines, at, ind, depth)
    } else if key_split(first).is_some() {
        mapping(lines, at, ind, depth)
    } else {
        *at = i + 1;
        let (text, used) = flow_text(lines, i, first);
        *at = used;
        scalar_or_flow(&text)
    }
}

fn sequence(lines: &[&str], at: &mut usize, ind: usize, depth: usize) -> Value {
    let mut items = Vec::new();
    while let Some(i) = next(lines, *at) {
        let line = lines[i];
        let rest = line.trim_start();
        if indent(line) != ind || !(rest == "-" || rest.starts_with("- ")) {
            break;
        }
        let item = rest[1..].trim_start();
        if item.is_empty() {
            *at = i + 1;
            items.push(block(lines, at, ind + 1, depth + 1));
        } else {
            // The item's text sits at the column after "- ": re-read it as a
            // line of its own at that indentation.
            let col = ind + (rest.len() - item.len());
            let mut local: Vec<String> = vec![format!("{}{}", " ".repeat(col), item)];
            let mut j = i + 1;
            while j < lines.len() && (lines[j].trim().is_empty() || indent(lines[j]) > ind) {
                local.push(lines[j].to_string());
                j += 1;
            }
            let refs: Vec<&str> = local.iter().map(String::as_str).collect();
            let mut k = 0;
            items.push(block(&refs, &mut k, col, depth + 1));
            *at = j;
        }
    }
    Value::Array(items)
}

fn mapping(lines: &[&str], at: &mut usize, ind: usize, depth: usize) -> Value {
    let mut map = Map::new();
    while let Some(i) = next(lines, *at) {
        let line = lines[i];
        if indent(line) != ind {
            break;
        }
        let Some((key, value)) = key_split(line.trim_start()) else {
            break;
        };
        *at = i + 1;
        let value = value.trim();
        let v = if value.is_empty() {
            // A nested block, or a sequence at the same indentation.
            match next(lines, *at) {
                Some(j)
                    if indent(lines[j]) > ind
                        || (indent(lines[j]) == ind && lines[j].trim_start().starts_with('-')) =>
                {
                    let min = if indent(lines[j]) > ind { ind + 1 } else { ind };
                    block(lines, at, min, depth + 1)
                }
                _ => Value::Null,
            }
        } else if value.starts_with('|') || value.starts_with('>') {
            block_scalar(lines, at, ind, value.starts_with('>'))
        } else {
            let (text, used) = flow_text(lines, i, value);
            *at = used;
            scalar_or_flow(&text)
        };
        map.insert(unquote(key), v);
    }
    Value::Object(map)
}

/// `key: value` split at the first `: ` (or trailing `:`) outside quotes
/// and brackets.
fn key_split(line: &str) -> Option<(&str, &str)> {
    if line.starts_with('{') || line.starts_with('[') {
        return None;
    }
    let (mut single, mut double) = (false, false);
    let bytes = line.as_bytes();
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            ':' if !single
                && !double
                && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t') =>
            {
                return Some((line[..i].trim(), &line[i + 1..]));
            }
            _ => {}
        }
    }
    None
}

/// A flow collection may span lines: joins lines until brackets balance.
/// Returns the text and the index of the first line after it.
fn flow_text(lines: &[&str], i: usize, first: &str) -> (String, usize) {
    let mut text = first.to_string();
    let mut j = i + 1;
    if text.starts_with('{') || text.starts_with('[') {
        while balance(&text) > 0 && j < lines.len() {
            text.push(' ');
            text.push_str(lines[j].trim());
            j += 1;
        }
    }
    (text, j)
}

fn balance(text: &str) -> i64 {
    let (mut single, mut double, mut n) = (false, false, 0i64);
    for c in text.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '{' | '[' if !single && !double => n += 1,
            '}' | ']' if !single && !double => n -= 1,
            _ => {}
        }
    }
    n
}

fn block_scalar(lines: &[&str], at: &mut usize, ind: usize, folded: bool) -> Value {
    let mut parts = Vec::new();
    while *at < lines.len() && (lines[*at].trim().is_empty() || indent(lines[*at]) > ind) {
        parts.push(lines[*at].trim());
        *at += 1;
    }
    Value::String(parts.join(if folded { " " } else { "\n" }))
}

fn scalar_or_flow(text: &str) -> Value {
    let t = text.trim();
    if t.starts_with('{') || t.starts_with('[') {
        let chars: Vec<char> = t.chars().collect();
        let mut pos = 0;
        flow(&chars, &mut pos, 0)
    } else {
        scalar(t)
    }
}

/// Reads one flow value at `pos`.
fn flow(c: &[char], pos: &mut usize, depth: usize) -> Value {
    skip_ws(c, pos);
    if depth > MAX_DEPTH || *pos >= c.len() {
        return Value::Null;
    }
    match c[*pos] {
        '{' => {
            *pos += 1;
            let mut map = Map::new();
            loop {
                skip_ws(c, pos);
                if *pos >= c.len() {
                    break;
                }
                if c[*pos] == '}' {
                    *pos += 1;
                    break;
                }
                if c[*pos] == ',' {
                    *pos += 1;
                    continue;
                }
                let key = flow_word(c, pos, true);
                skip_ws(c, pos);
                let value = if *pos < c.len() && c[*pos] == ':' {
                    *pos += 1;
                    flow(c, pos, depth + 1)
                } else {
                    Value::Null
                };
                map.insert(key, value);
            }
            Value::Object(map)
        }
        '[' => {
            *pos += 1;
            let mut items = Vec::new();
            loop {
                skip_ws(c, pos);
                if *pos >= c.len() {
                    break;
                }
                if c[*pos] == ']' {
                    *pos += 1;
                    break;
                }
                if c[*pos] == ',' {
                    *pos += 1;
                    continue;
                }
                let before = *pos;
                items.push(flow(c, pos, depth + 1));
                if *pos == before {
                    *pos += 1;
                }
            }
            Value::Array(items)
        }
        _ => {
            let quoted = c[*pos] == '"' || c[*pos] == '\'';
            let word = flow_word(c, pos, false);
            if quoted {
                Value::String(word)
            } else {
                scalar(&word)
            }
        }
    }
}

/// A flow scalar: quoted, or plain up to `,`, `}`, `]` (and `:` for keys).
fn flow_word(c: &[char], pos: &mut usize, key: bool) -> String {
    skip_ws(c, pos);
    if *pos < c.len() && (c[*pos] == '"' || c[*pos] == '\'') {
        let q = c[*pos];
        let start = *pos;
        *pos += 1;
        while *pos < c.len() && c[*pos] != q {
            if q == '"' && c[*pos] == '\\' {
                *pos += 1;
            }
            *pos += 1;
        }
        *pos = (*pos + 1).min(c.len());
        return unquote(&c[start..*pos].iter().collect::<String>());
    }
    let start = *pos;
    while *pos < c.len() {
        let ch = c[*pos];
        let colon = ch == ':' && (*pos + 1 == c.len() || c[*pos + 1] == ' ');
        if ch == ',' || ch == '}' || ch == ']' || (key && colon) {
            break;
        }
        *pos += 1;
    }
    c[start..*pos].iter().collect::<String>().trim().to_string()
}

fn skip_ws(c: &[char], pos: &mut usize) {
    while *pos < c.len() && c[*pos].is_whitespace() {
        *pos += 1;
    }
}

/// Strips quotes from a key or scalar, undoing the common escapes.
fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        let inner = &s[1..s.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        }
        return out;
    }
    if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        return s[1..s.len() - 1].replace("''", "'");
    }
    s.to_string()
}

fn scalar(text: &str) -> Value {
    let t = text.trim();
    if t.starts_with('"') || t.starts_with('\'') {
        return Value::String(unquote(t));
    }
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(n) = t.parse::<i64>() {
        return Value::from(n);
    }
    if t.contains('.')
        && t.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        && let Ok(f) = t.parse::<f64>()
    {
        return Value::from(f);
    }
    Value::String(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blocks_sequences_and_flow() {
        let v = parse(
            "# top\nhttp:\n  routers:\n    shop:\n      rule: \"Host(`shop.test`)\" # c\n      entryPoints:\n        - web\n      service: shop\n  services:\n    shop:\n      loadBalancer:\n        servers:\n          - url: 'http://127.0.0.1:3000'\n          - url: http://127.0.0.1:3001\n            weight: 2\nlist:\n- a\n- {x: 1, y: [2, \"3\"]}\n",
        );
        assert_eq!(
            v.pointer("/http/routers/shop/rule"),
            Some(&json!("Host(`shop.test`)"))
        );
        assert_eq!(
            v.pointer("/http/routers/shop/entryPoints"),
            Some(&json!(["web"]))
        );
        assert_eq!(
            v.pointer("/http/services/shop/loadBalancer/servers"),
            Some(
                &json!([{"url": "http://127.0.0.1:3000"}, {"url": "http://127.0.0.1:3001", "weight": 2}])
            )
        );
        assert_eq!(v.get("list"), Some(&json!(["a", {"x": 1, "y": [2, "3"]}])));
    }

    #[test]
    fn multi_line_flow_block_scalars_and_documents() {
        let v = parse(
            "---\na: { b: 1,\n  c: [x, y] }\nd: |\n  one\n  two\ne: 'it''s'\nf: 0.5s\n---\nsecond: 1\n",
        );
        assert_eq!(
            v,
            json!({"a": {"b": 1, "c": ["x", "y"]}, "d": "one\ntwo", "e": "it's", "f": "0.5s"})
        );
        assert_eq!(parse(""), Value::Null);
        assert_eq!(parse("[unclosed"), json!(["unclosed"]));
    }
}
