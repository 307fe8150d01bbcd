//! Secrets: salted hashes for the state file and saved plans, and a scrubber that takes known
//! secret values out of any text (plans, errors, logs).

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// What a redacted value is shown as.
pub const REDACTED: &str = "(sensitive)";

/// Secrets shorter than this are not scrubbed from free text: replacing every `true` or `1`
/// would garble output without protecting anything. They are still redacted wherever they
/// sit in a sensitive attribute.
pub const MIN_SCRUB_LEN: usize = 4;

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A fresh random salt (128 bits, hex).
pub fn random_salt() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// JSON with object keys sorted at every level, so equal values hash equally whatever order
/// they were built in.
pub fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                let mut m = serde_json::Map::new();
                for k in keys {
                    m.insert(k.clone(), sorted(&o[k]));
                }
                Value::Object(m)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// `sha256:<hex>` of the salt and the value's canonical JSON. Stored instead of a secret so
/// that a change can still be detected.
pub fn salted_hash(salt: &str, v: &Value) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(b"\0");
    h.update(canonical_json(v).as_bytes());
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Takes known secret values out of text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    // Longest first, so a secret that contains another is replaced whole.
    secrets: Vec<String>,
    reveal: bool,
}

impl Redactor {
    /// A scrubber for these values. With `reveal`, nothing is scrubbed (the explicit flag).
    pub fn new<I, S>(secrets: I, reveal: bool) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(Into::into)
            .filter(|s| s.len() >= MIN_SCRUB_LEN)
            .collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        secrets.dedup();
        Redactor { secrets, reveal }
    }

    /// Adds values (for example the plain values of attributes a provider marks sensitive).
    pub fn extend<I: IntoIterator<Item = String>>(&mut self, more: I) {
        let mut all = std::mem::take(&mut self.secrets);
        all.extend(more.into_iter().filter(|s| s.len() >= MIN_SCRUB_LEN));
        *self = Redactor::new(all, self.reveal);
    }

    /// True when sensitive values are shown (the explicit reveal flag).
    pub fn reveals(&self) -> bool {
        self.reveal
    }

    /// The text with every known secret replaced by [`REDACTED`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.reveal || !self.secrets.iter().any(|s| text.contains(s.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_owned();
        for s in &self.secrets {
            out = out.replace(s.as_str(), REDACTED);
        }
        Cow::Owned(out)
    }

    /// True when any string inside the value contains a known secret.
    pub fn taints(&self, v: &Value) -> bool {
        if self.reveal || self.secrets.is_empty() {
            return false;
        }
        match v {
            Value::String(s) => self.secrets.iter().any(|x| s.contains(x.as_str())),
            Value::Array(a) => a.iter().any(|x| self.taints(x)),
            Value::Object(o) => o.values().any(|x| self.taints(x)),
            _ => false,
        }
    }
}

/// Every string leaf of a value, for feeding sensitive values to a [`Redactor`].
pub fn strings_of(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            Value::Number(n) => out.push(n.to_string()),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrubs_longest_first_and_respects_reveal() {
        let r = Redactor::new(["hunter2", "hunter2-long", "ab"], false);
        assert_eq!(
            r.scrub("x hunter2-long y hunter2"),
            "x (sensitive) y (sensitive)"
        );
        assert_eq!(r.scrub("ab"), "ab");
        assert!(r.taints(&json!({"a": ["zz hunter2"]})));
        let shown = Redactor::new(["hunter2"], true);
        assert_eq!(shown.scrub("hunter2"), "hunter2");
    }

    #[test]
    fn hashes_ignore_key_order_and_depend_on_salt() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":2,"b":1}"#).unwrap();
        assert_eq!(salted_hash("s", &a), salted_hash("s", &b));
        assert_ne!(salted_hash("s", &a), salted_hash("t", &a));
    }
}
