//! The YAML loader: YAML 1.2 (core schema) into a tree of [`Node`]s that keep their spans.
//!
//! CloudFormation short tags (`!Ref`, `!GetAtt`, `!Sub`, ...) are rewritten to their long
//! JSON form (`{"Ref": ..}`, `{"Fn::GetAtt": [..]}`), the way `cfn-flip` does, so they flow into
//! CloudFormation artifacts unchanged. Anchors, aliases and `<<` merge keys are supported.

use crate::diag::Diag;
use crate::source::{FileId, Span};
use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use std::collections::HashMap;

/// A YAML value with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub span: Span,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order. Keys are nodes so that errors can point at them.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A node with a value and span.
    pub fn new(value: Value, span: Span) -> Self {
        Node { value, span }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under a string key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key node for a string key of a mapping.
    pub fn get_key(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.key_str() == Some(key))
            .map(|(k, _)| k)
    }

    /// The key as text: strings as they are, scalars printed (YAML allows `200:` as a key).
    pub fn key_str(&self) -> Option<&str> {
        self.as_str()
    }

    /// A short name of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar printed as text (for interpolation into strings).
    pub fn scalar_text(&self) -> Option<String> {
        Some(match &self.value {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s.clone(),
            _ => return None,
        })
    }

    /// Converts to JSON (spans dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Builds a node from JSON, giving every node the same span.
    pub fn from_json(v: &serde_json::Value, span: Span) -> Node {
        use serde_json::Value as J;
        let value = match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => n
                .as_i64()
                .map_or_else(|| Value::Float(n.as_f64().unwrap_or(0.0)), Value::Int),
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::Seq(a.iter().map(|x| Node::from_json(x, span)).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| {
                        (
                            Node::new(Value::Str(k.clone()), span),
                            Node::from_json(v, span),
                        )
                    })
                    .collect(),
            ),
        };
        Node::new(value, span)
    }
}

/// The CloudFormation intrinsic functions that have a YAML short form.
pub const CFN_TAGS: &[&str] = &[
    "Ref",
    "Condition",
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAtt",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "Transform",
    "And",
    "Equals",
    "If",
    "Not",
    "Or",
    "Length",
    "ToJsonString",
];

/// Parses a YAML (or JSON) document. An empty document is `null`.
pub fn parse(text: &str, file: FileId) -> Result<Node, Diag> {
    let offsets = CharOffsets::new(text);
    let mut builder = Builder {
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
    };
    let mut parser = Parser::new_from_str(text);
    let mut docs = 0;
    while let Some(ev) = parser.next_event() {
        let (event, span) = ev.map_err(|e| {
            let at = offsets.byte(e.marker().index());
            Diag::error("yaml-syntax", format!("invalid YAML: {}", e.info()))
                .at(Span::new(file, at, at + 1))
                .help("check the indentation and quoting around this position")
        })?;
        let span = Span::new(
            file,
            offsets.byte(span.start.index()),
            offsets.byte(span.end.index()),
        );
        match event {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(Diag::error("yaml-multi-document", "the manifest holds more than one YAML document")
                        .at(span)
                        .help("keep one document per file: remove the `---` separator and what follows it"));
                }
            }
            Event::Scalar(v, style, anchor, tag) => {
                let node = builder.scalar(&v, style, tag.as_deref(), span)?;
                builder.push(node, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => builder.stack.push(Open::Seq {
                items: vec![],
                span,
                anchor,
                tag: tag.map(|t| t.into_owned()),
            }),
            Event::MappingStart(anchor, tag) => builder.stack.push(Open::Map {
                entries: vec![],
                key: None,
                span,
                anchor,
                tag: tag.map(|t| t.into_owned()),
            }),
            Event::SequenceEnd => {
                let Some(Open::Seq {
                    items,
                    span: start,
                    anchor,
                    tag,
                }) = builder.stack.pop()
                else {
                    unreachable!("parser balances events")
                };
                let node = Node::new(
                    Value::Seq(items),
                    Span::new(file, start.start, span.end.max(start.end)),
                );
                let node = builder.apply_tag(node, tag.as_ref())?;
                builder.push(node, anchor)?;
            }
            Event::MappingEnd => {
                let Some(Open::Map {
                    entries,
                    span: start,
                    anchor,
                    tag,
                    ..
                }) = builder.stack.pop()
                else {
                    unreachable!("parser balances events")
                };
                let entries = merge_keys(entries)?;
                check_duplicates(&entries)?;
                let node = Node::new(
                    Value::Map(entries),
                    Span::new(file, start.start, span.end.max(start.end)),
                );
                let node = builder.apply_tag(node, tag.as_ref())?;
                builder.push(node, anchor)?;
            }
            Event::Alias(id) => {
                let node = builder.anchors.get(&id).cloned().ok_or_else(|| {
                    Diag::error("yaml-alias", "alias to an unknown anchor").at(span)
                })?;
                builder.push(node, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(builder
        .root
        .unwrap_or_else(|| Node::new(Value::Null, Span::new(file, 0, 0))))
}

enum Open {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
        tag: Option<Tag>,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        span: Span,
        anchor: usize,
        tag: Option<Tag>,
    },
}

struct Builder {
    anchors: HashMap<usize, Node>,
    stack: Vec<Open>,
    root: Option<Node>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) -> Result<(), Diag> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }

    fn scalar(
        &self,
        v: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        span: Span,
    ) -> Result<Node, Diag> {
        let plain = style == ScalarStyle::Plain;
        let node = match tag {
            Some(t) if t.is_yaml_core_schema() => {
                let value = match t.suffix.as_str() {
                    "str" => Value::Str(v.to_owned()),
                    "null" => Value::Null,
                    "bool" | "int" | "float" => match resolve_plain(v) {
                        x @ (Value::Bool(_) | Value::Int(_) | Value::Float(_)) => x,
                        _ => {
                            return Err(Diag::error(
                                "yaml-tag",
                                format!("`{v}` is not a valid !!{}", t.suffix),
                            )
                            .at(span))
                        }
                    },
                    _ => Value::Str(v.to_owned()),
                };
                return Ok(Node::new(value, span));
            }
            _ => Node::new(
                if plain {
                    resolve_plain(v)
                } else {
                    Value::Str(v.to_owned())
                },
                span,
            ),
        };
        self.apply_tag(node, tag)
    }

    /// Rewrites a CloudFormation short tag into its long form.
    fn apply_tag(&self, node: Node, tag: Option<&Tag>) -> Result<Node, Diag> {
        let Some(tag) = tag else { return Ok(node) };
        if tag.is_yaml_core_schema() {
            return Ok(node);
        }
        let name = tag.suffix.as_str();
        let span = node.span;
        if tag.handle != "!" || !CFN_TAGS.contains(&name) {
            let hint = crate::diag::did_you_mean(name, CFN_TAGS.iter().copied())
                .map(|s| format!("did you mean `!{s}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "ferry understands the CloudFormation short tags: !{}",
                        CFN_TAGS.join(", !")
                    )
                });
            return Err(Diag::error(
                "yaml-tag",
                format!("unknown YAML tag `{}{}`", tag.handle, tag.suffix),
            )
            .at(span)
            .help(hint));
        }
        let value = match (name, &node.value) {
            ("GetAtt", Value::Str(s)) => {
                // `!GetAtt Resource.Attribute` is `{"Fn::GetAtt": ["Resource", "Attribute"]}`.
                let (res, attr) = s.split_once('.').unwrap_or((s.as_str(), ""));
                Node::new(
                    Value::Seq(vec![
                        Node::new(Value::Str(res.to_owned()), span),
                        Node::new(Value::Str(attr.to_owned()), span),
                    ]),
                    span,
                )
            }
            _ => node,
        };
        let key = match name {
            "Ref" | "Condition" => name.to_owned(),
            _ => format!("Fn::{name}"),
        };
        Ok(Node::new(
            Value::Map(vec![(Node::new(Value::Str(key), span), value)]),
            span,
        ))
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub fn resolve_plain(v: &str) -> Value {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let b = v.as_bytes();
    if let Some(hex) = v.strip_prefix("0x") {
        if !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Value::Int(i);
            }
        }
    }
    if let Some(oct) = v.strip_prefix("0o") {
        if !oct.is_empty() && oct.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
            if let Ok(i) = i64::from_str_radix(oct, 8) {
                return Value::Int(i);
            }
        }
    }
    let digits = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        if let Ok(i) = v.parse::<i64>() {
            return Value::Int(i);
        }
    }
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    if is_core_float(digits) {
        if let Ok(f) = v.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(v.to_owned())
}

fn is_core_float(s: &[u8]) -> bool {
    let (mantissa, exp) = match s.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let ok_mantissa = match mantissa.iter().position(|&c| c == b'.') {
        Some(i) => {
            let (int, frac) = (&mantissa[..i], &mantissa[i + 1..]);
            int.iter().all(u8::is_ascii_digit)
                && frac.iter().all(u8::is_ascii_digit)
                && (!int.is_empty() || !frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.iter().all(u8::is_ascii_digit),
    };
    let ok_exp = match exp {
        None => true,
        Some(e) => {
            let e = e
                .strip_prefix(b"-")
                .or_else(|| e.strip_prefix(b"+"))
                .unwrap_or(e);
            !e.is_empty() && e.iter().all(u8::is_ascii_digit)
        }
    };
    ok_mantissa && ok_exp
}

/// Applies `<<` merge keys: entries of the merged mapping(s) that the mapping does not set.
fn merge_keys(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, Diag> {
    if !entries.iter().any(|(k, _)| k.as_str() == Some("<<")) {
        return Ok(entries);
    }
    let mut own = Vec::new();
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in entries {
        if k.as_str() != Some("<<") {
            own.push((k, v));
            continue;
        }
        let sources: Vec<Node> = match v.value {
            Value::Map(_) => vec![v],
            Value::Seq(items) => items,
            _ => {
                return Err(Diag::error(
                    "yaml-merge",
                    "a `<<` merge key needs a mapping or a list of mappings",
                )
                .at(v.span))
            }
        };
        for src in sources {
            let Value::Map(m) = src.value else {
                return Err(Diag::error(
                    "yaml-merge",
                    "a `<<` merge key needs a mapping or a list of mappings",
                )
                .at(src.span));
            };
            for (mk, mv) in m {
                if !merged.iter().any(|(k, _)| k.value == mk.value) {
                    merged.push((mk, mv));
                }
            }
        }
    }
    for (mk, mv) in merged {
        if !own.iter().any(|(k, _)| k.value == mk.value) {
            own.push((mk, mv));
        }
    }
    Ok(own)
}

fn check_duplicates(entries: &[(Node, Node)]) -> Result<(), Diag> {
    if entries.len() < 2 {
        return Ok(());
    }
    let mut seen: HashMap<String, Span> = HashMap::with_capacity(entries.len());
    for (k, _) in entries {
        let Some(text) = k.scalar_text() else {
            continue;
        };
        if let Some(first) = seen.insert(text.clone(), k.span) {
            let _ = first;
            return Err(
                Diag::error("yaml-duplicate-key", format!("duplicate key `{text}`"))
                    .at(k.span)
                    .label("set again here")
                    .help("a key may appear once per mapping: remove or merge one of them"),
            );
        }
    }
    Ok(())
}

/// Maps the parser's character indices to byte offsets.
struct CharOffsets {
    ascii: bool,
    bytes: Vec<usize>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        if text.is_ascii() {
            CharOffsets {
                ascii: true,
                bytes: vec![],
                len: text.len(),
            }
        } else {
            CharOffsets {
                ascii: false,
                bytes: text.char_indices().map(|(i, _)| i).collect(),
                len: text.len(),
            }
        }
    }
    fn byte(&self, char_index: usize) -> usize {
        if self.ascii {
            char_index.min(self.len)
        } else {
            self.bytes.get(char_index).copied().unwrap_or(self.len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> serde_json::Value {
        parse(s, 0).unwrap().to_json()
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(
            p("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: yes\ng: 0x1f\nh: 1e3\ni: .5"),
            serde_json::json!({"a":1,"b":1.5,"c":true,"d":null,"e":"1","f":"yes","g":31,"h":1000.0,"i":0.5})
        );
    }

    #[test]
    fn cloudformation_tags_become_long_form() {
        let v = p("a: !Ref Bucket\nb: !GetAtt Queue.Arn\nc: !Sub '${AWS::Region}-x'\nd: !Join ['', [a, !Ref B]]");
        assert_eq!(
            v,
            serde_json::json!({
                "a": {"Ref": "Bucket"},
                "b": {"Fn::GetAtt": ["Queue", "Arn"]},
                "c": {"Fn::Sub": "${AWS::Region}-x"},
                "d": {"Fn::Join": ["", ["a", {"Ref": "B"}]]}
            })
        );
    }

    #[test]
    fn anchors_and_merge_keys() {
        let v = p("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n");
        assert_eq!(v["use"], serde_json::json!({"y": 3, "x": 1}));
    }

    #[test]
    fn duplicate_keys_and_unknown_tags_are_errors() {
        let e = parse("a: 1\na: 2\n", 0).unwrap_err();
        assert_eq!(e.code, "yaml-duplicate-key");
        assert_eq!(e.span.unwrap().start, 5);
        let e = parse("a: !Reff x\n", 0).unwrap_err();
        assert!(e.help.unwrap().contains("!Ref"));
    }

    #[test]
    fn spans_are_byte_offsets_even_after_unicode() {
        let src = "name: \"héllo\"\nkey: value\n";
        let n = parse(src, 0).unwrap();
        let v = n.get("key").unwrap();
        assert_eq!(&src[v.span.start..v.span.end], "value");
    }
}

/// Writes JSON as block-style YAML. Strings that could be read back as anything else (numbers,
/// booleans, null, strings with special characters) are written double-quoted, which YAML reads
/// with JSON's escapes, so `parse(to_yaml(v)) == v` for every value.
pub fn to_yaml(v: &serde_json::Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn emit(v: &serde_json::Value, indent: usize, out: &mut String, inline_first: bool) {
    use serde_json::Value as J;
    let pad = "  ".repeat(indent);
    match v {
        J::Object(o) if !o.is_empty() => {
            for (i, (k, val)) in o.iter().enumerate() {
                if i > 0 || !inline_first {
                    out.push_str(&pad);
                }
                out.push_str(&scalar_str(k));
                out.push(':');
                emit_child(val, indent, out);
            }
        }
        J::Array(a) if !a.is_empty() => {
            for (i, item) in a.iter().enumerate() {
                if i > 0 || !inline_first {
                    out.push_str(&pad);
                }
                out.push_str("- ");
                match item {
                    J::Object(o) if !o.is_empty() => emit(item, indent + 1, out, true),
                    J::Array(x) if !x.is_empty() => emit(item, indent + 1, out, true),
                    _ => {
                        out.push_str(&inline(item));
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn emit_child(val: &serde_json::Value, indent: usize, out: &mut String) {
    use serde_json::Value as J;
    match val {
        J::Object(o) if !o.is_empty() => {
            out.push('\n');
            emit(val, indent + 1, out, false);
        }
        J::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(val, indent + 1, out, false);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(val));
            out.push('\n');
        }
    }
}

fn inline(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => {
            let s = n.to_string();
            // A float that prints without a dot would read back as an integer.
            if n.is_f64() && !s.contains(['.', 'e', 'E']) {
                format!("{s}.0")
            } else {
                s
            }
        }
        J::String(s) => scalar_str(s),
        J::Array(_) => "[]".into(),
        J::Object(_) => "{}".into(),
    }
}

fn scalar_str(s: &str) -> String {
    let plain_ok = !s.is_empty()
        && matches!(resolve_plain(s), Value::Str(_))
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | '(' | ')' | '$' | '+' | '=')
        })
        && !s.starts_with(['-', '.', '(', ')', '$', '='])
        && !s.ends_with('.');
    if plain_ok {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

#[cfg(test)]
mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e9f64..1e9).prop_map(serde_json::Value::from),
            ".*".prop_map(serde_json::Value::from),
            "[a-z0-9 ._:-]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-zA-Z0-9 _.-]{1,8}", inner, 0..5)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn emitted_yaml_reads_back_the_same(v in json()) {
            let text = to_yaml(&v);
            let back = parse(&text, 0).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?.to_json();
            prop_assert_eq!(back, v, "yaml was:\n{}", text);
        }

        #[test]
        fn parser_never_panics(s in ".{0,200}") {
            let _ = parse(&s, 0);
        }

        #[test]
        fn parser_never_panics_on_yamlish_input(s in "([a-z{}\\[\\]:,'\"!&*#|>-]|\n|  ){0,120}") {
            let _ = parse(&s, 0);
        }
    }
}
