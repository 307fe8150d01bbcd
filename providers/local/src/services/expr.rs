//! DynamoDB's condition and update expressions, for the local tables: `ConditionExpression`
//! and `FilterExpression` (comparisons, `BETWEEN`, `IN`, `AND`/`OR`/`NOT`, `attribute_exists`,
//! `attribute_not_exists`, `attribute_type`, `begins_with`, `contains`, `size`) and
//! `UpdateExpression` (`SET` with `+`/`-`, `if_not_exists` and `list_append`, `REMOVE`, `ADD`,
//! `DELETE`), with `#name` and `:value` placeholders. Attribute paths are top-level names:
//! a nested path (`a.b`, `a[0]`) is refused with a message that says so, rather than read
//! wrongly.

use serde_json::{Map, Value};
use std::cmp::Ordering;

/// An item: attribute name → AttributeValue (`{"S": "x"}`, `{"N": "1"}`, ...).
pub type Item = Map<String, Value>;

/// What the expression's placeholders stand for.
pub struct Names<'a> {
    /// `ExpressionAttributeNames`.
    pub names: &'a Map<String, Value>,
    /// `ExpressionAttributeValues`.
    pub values: &'a Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Name(String),
    Value(String),
    Sym(&'static str),
}

fn tokens(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let word = |i: &mut usize| {
            let start = *i;
            while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
                *i += 1;
            }
            chars[start..*i].iter().collect::<String>()
        };
        if c == '#' || c == ':' {
            i += 1;
            let w = word(&mut i);
            if w.is_empty() {
                return Err(format!("a lone `{c}` in the expression"));
            }
            out.push(if c == '#' {
                Tok::Name(format!("#{w}"))
            } else {
                Tok::Value(format!(":{w}"))
            });
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            out.push(Tok::Word(word(&mut i)));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym = match two.as_str() {
            "<>" => Some("<>"),
            "<=" => Some("<="),
            ">=" => Some(">="),
            _ => None,
        };
        if let Some(s) = sym {
            out.push(Tok::Sym(s));
            i += 2;
            continue;
        }
        let s = match c {
            '(' => "(",
            ')' => ")",
            ',' => ",",
            '=' => "=",
            '<' => "<",
            '>' => ">",
            '+' => "+",
            '-' => "-",
            '.' | '[' => {
                return Err(
                    "ferry dev's tables take top-level attribute names only, not nested paths (`a.b`, `a[0]`)"
                        .into(),
                )
            }
            other => return Err(format!("unexpected `{other}` in the expression")),
        };
        out.push(Tok::Sym(s));
        i += 1;
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    names: &'a Names<'a>,
}

/// An operand: an attribute, a value, or a function of them.
#[derive(Debug, Clone)]
enum Operand {
    Path(String),
    Value(Value),
    Size(String),
    IfNotExists(String, Box<Operand>),
    ListAppend(Box<Operand>, Box<Operand>),
    Arith(Box<Operand>, bool, Box<Operand>),
}

/// A condition.
#[derive(Debug, Clone)]
enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Compare(Operand, &'static str, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(String, bool),
    Type(String, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}

impl<'a> Parser<'a> {
    fn new(text: &str, names: &'a Names<'a>) -> Result<Self, String> {
        Ok(Parser {
            toks: tokens(text)?,
            at: 0,
            names,
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn eat_keyword(&mut self, k: &str) -> bool {
        let yes = self.keyword(k);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn eat(&mut self, sym: &str) -> bool {
        let yes = matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn expect(&mut self, sym: &str) -> Result<(), String> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(format!("expected `{sym}` {}", self.where_()))
        }
    }

    fn where_(&self) -> String {
        match self.peek() {
            None => "at the end of the expression".into(),
            Some(t) => format!("near {}", show(t)),
        }
    }

    fn done(&self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(format!("unexpected {} in the expression", show(t))),
        }
    }

    fn path(&mut self) -> Result<String, String> {
        match self.toks.get(self.at).cloned() {
            Some(Tok::Word(w)) => {
                self.at += 1;
                Ok(w)
            }
            Some(Tok::Name(n)) => {
                self.at += 1;
                self.names
                    .names
                    .get(&n)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        format!("An expression attribute name used in the document path is not defined; attribute name: {n}")
                    })
            }
            _ => Err(format!("expected an attribute name {}", self.where_())),
        }
    }

    fn function(&self) -> Option<String> {
        match (self.toks.get(self.at), self.toks.get(self.at + 1)) {
            (Some(Tok::Word(w)), Some(Tok::Sym("("))) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    /// An operand of a condition, or of `SET` when `update` is set.
    fn operand(&mut self, update: bool) -> Result<Operand, String> {
        if let Some(f) = self.function() {
            self.at += 2;
            let o = match (f.as_str(), update) {
                ("size", false) => Operand::Size(self.path()?),
                ("if_not_exists", true) => {
                    let p = self.path()?;
                    self.expect(",")?;
                    Operand::IfNotExists(p, Box::new(self.operand(true)?))
                }
                ("list_append", true) => {
                    let a = self.operand(true)?;
                    self.expect(",")?;
                    Operand::ListAppend(Box::new(a), Box::new(self.operand(true)?))
                }
                _ => return Err(format!("Invalid function name; function: {f}")),
            };
            self.expect(")")?;
            return Ok(o);
        }
        match self.toks.get(self.at).cloned() {
            Some(Tok::Value(v)) => {
                self.at += 1;
                self.names.values.get(&v).cloned().map(Operand::Value).ok_or_else(|| {
                    format!("An expression attribute value used in expression is not defined; attribute value: {v}")
                })
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut c = self.and()?;
        while self.eat_keyword("OR") {
            c = Cond::Or(Box::new(c), Box::new(self.and()?));
        }
        Ok(c)
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut c = self.not()?;
        while self.eat_keyword("AND") {
            c = Cond::And(Box::new(c), Box::new(self.not()?));
        }
        Ok(c)
    }

    fn not(&mut self) -> Result<Cond, String> {
        if self.eat_keyword("NOT") {
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, String> {
        if self.eat("(") {
            let c = self.or()?;
            self.expect(")")?;
            return Ok(c);
        }
        if let Some(f) = self.function().filter(|f| f != "size") {
            self.at += 2;
            let c = match f.as_str() {
                "attribute_exists" => Cond::Exists(self.path()?, true),
                "attribute_not_exists" => Cond::Exists(self.path()?, false),
                "attribute_type" => {
                    let p = self.path()?;
                    self.expect(",")?;
                    Cond::Type(p, self.operand(false)?)
                }
                "begins_with" | "contains" => {
                    let a = self.operand(false)?;
                    self.expect(",")?;
                    let b = self.operand(false)?;
                    if f == "contains" {
                        Cond::Contains(a, b)
                    } else {
                        Cond::BeginsWith(a, b)
                    }
                }
                _ => return Err(format!("Invalid function name; function: {f}")),
            };
            self.expect(")")?;
            return Ok(c);
        }
        let left = self.operand(false)?;
        if self.eat_keyword("BETWEEN") {
            let low = self.operand(false)?;
            if !self.eat_keyword("AND") {
                return Err(format!("expected AND in BETWEEN {}", self.where_()));
            }
            return Ok(Cond::Between(left, low, self.operand(false)?));
        }
        if self.eat_keyword("IN") {
            self.expect("(")?;
            let mut list = vec![self.operand(false)?];
            while self.eat(",") {
                list.push(self.operand(false)?);
            }
            self.expect(")")?;
            return Ok(Cond::In(left, list));
        }
        for op in ["=", "<>", "<=", ">=", "<", ">"] {
            if self.eat(op) {
                return Ok(Cond::Compare(left, op, self.operand(false)?));
            }
        }
        Err(format!("expected a comparison {}", self.where_()))
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Word(w) | Tok::Name(w) | Tok::Value(w) => format!("`{w}`"),
        Tok::Sym(s) => format!("`{s}`"),
    }
}

/// A parsed condition (`ConditionExpression`, `FilterExpression`).
pub struct Condition(Cond);

impl Condition {
    /// Parses `text`; the error is DynamoDB's `ValidationException` message.
    pub fn parse(text: &str, names: &Names<'_>) -> Result<Self, String> {
        let mut p = Parser::new(text, names)?;
        let c = p.or()?;
        p.done()?;
        Ok(Condition(c))
    }

    /// Whether `item` (empty when there is none) satisfies it.
    pub fn holds(&self, item: &Item) -> bool {
        eval(&self.0, item)
    }
}

fn value_of(o: &Operand, item: &Item) -> Option<Value> {
    match o {
        Operand::Path(p) => item.get(p).cloned(),
        Operand::Value(v) => Some(v.clone()),
        Operand::Size(p) => {
            let (ty, v) = item.get(p)?.as_object()?.iter().next()?;
            let n = match ty.as_str() {
                "S" => v.as_str()?.chars().count(),
                "B" => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(v.as_str()?)
                        .ok()?
                        .len()
                }
                "L" | "SS" | "NS" | "BS" => v.as_array()?.len(),
                "M" => v.as_object()?.len(),
                _ => return None,
            };
            Some(serde_json::json!({ "N": n.to_string() }))
        }
        Operand::IfNotExists(p, default) => {
            item.get(p).cloned().or_else(|| value_of(default, item))
        }
        Operand::ListAppend(a, b) => {
            let mut list = value_of(a, item)?.get("L")?.as_array()?.clone();
            list.extend(value_of(b, item)?.get("L")?.as_array()?.iter().cloned());
            Some(serde_json::json!({ "L": list }))
        }
        Operand::Arith(a, plus, b) => {
            let (x, y) = (value_of(a, item)?, value_of(b, item)?);
            Some(
                serde_json::json!({ "N": add(x.get("N")?.as_str()?, y.get("N")?.as_str()?, *plus)? }),
            )
        }
    }
}

/// `a ± b` on DynamoDB numbers (strings): exact for integers, f64 otherwise.
fn add(a: &str, b: &str, plus: bool) -> Option<String> {
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return Some(if plus { x + y } else { x - y }.to_string());
    }
    let (x, y) = (a.parse::<f64>().ok()?, b.parse::<f64>().ok()?);
    Some(if plus { x + y } else { x - y }.to_string())
}

/// Orders two AttributeValues of the same scalar type (N numerically, S and B as text).
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    let (ta, va) = a.as_object()?.iter().next()?;
    let (tb, vb) = b.as_object()?.iter().next()?;
    if ta != tb {
        return None;
    }
    match ta.as_str() {
        "N" => va
            .as_str()?
            .parse::<f64>()
            .ok()?
            .partial_cmp(&vb.as_str()?.parse::<f64>().ok()?),
        "S" | "B" => Some(va.as_str()?.cmp(vb.as_str()?)),
        _ => (a == b).then_some(Ordering::Equal),
    }
}

fn eval(c: &Cond, item: &Item) -> bool {
    match c {
        Cond::And(a, b) => eval(a, item) && eval(b, item),
        Cond::Or(a, b) => eval(a, item) || eval(b, item),
        Cond::Not(a) => !eval(a, item),
        Cond::Compare(a, op, b) => {
            let (Some(x), Some(y)) = (value_of(a, item), value_of(b, item)) else {
                return false;
            };
            let ord = compare(&x, &y);
            match *op {
                "=" => ord == Some(Ordering::Equal),
                "<>" => ord != Some(Ordering::Equal),
                "<" => ord == Some(Ordering::Less),
                "<=" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                ">" => ord == Some(Ordering::Greater),
                _ => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
            }
        }
        Cond::Between(a, low, high) => {
            match (value_of(a, item), value_of(low, item), value_of(high, item)) {
                (Some(x), Some(l), Some(h)) => {
                    matches!(compare(&x, &l), Some(Ordering::Greater | Ordering::Equal))
                        && matches!(compare(&x, &h), Some(Ordering::Less | Ordering::Equal))
                }
                _ => false,
            }
        }
        Cond::In(a, list) => value_of(a, item).is_some_and(|x| {
            list.iter().any(|o| {
                value_of(o, item).is_some_and(|y| compare(&x, &y) == Some(Ordering::Equal))
            })
        }),
        Cond::Exists(p, yes) => item.contains_key(p) == *yes,
        Cond::Type(p, t) => match (item.get(p).and_then(Value::as_object), value_of(t, item)) {
            (Some(o), Some(t)) => t
                .get("S")
                .and_then(Value::as_str)
                .is_some_and(|t| o.contains_key(t)),
            _ => false,
        },
        Cond::BeginsWith(a, b) => match (value_of(a, item), value_of(b, item)) {
            (Some(x), Some(y)) => match (x.get("S"), y.get("S")) {
                (Some(Value::String(x)), Some(Value::String(y))) => x.starts_with(y.as_str()),
                _ => false,
            },
            _ => false,
        },
        Cond::Contains(a, b) => match (value_of(a, item), value_of(b, item)) {
            (Some(x), Some(y)) => {
                let (tx, vx) = x.as_object().and_then(|o| o.iter().next()).unzip();
                match (tx.map(String::as_str), vx) {
                    (Some("S"), Some(Value::String(s))) => y
                        .get("S")
                        .and_then(Value::as_str)
                        .is_some_and(|n| s.contains(n)),
                    (Some("SS" | "NS" | "BS"), Some(Value::Array(set))) => y
                        .as_object()
                        .and_then(|o| o.values().next())
                        .is_some_and(|v| set.contains(v)),
                    (Some("L"), Some(Value::Array(list))) => list.contains(&y),
                    _ => false,
                }
            }
            _ => false,
        },
    }
}

/// One action of an `UpdateExpression`.
#[derive(Debug)]
enum Action {
    Set(String, Operand),
    Remove(String),
    Add(String, Operand),
    Delete(String, Operand),
}

/// A parsed `UpdateExpression`.
pub struct Update(Vec<Action>);

impl Update {
    /// Parses `text`; the error is DynamoDB's `ValidationException` message.
    pub fn parse(text: &str, names: &Names<'_>) -> Result<Self, String> {
        let mut p = Parser::new(text, names)?;
        let mut actions = Vec::new();
        let mut seen = Vec::new();
        while p.peek().is_some() {
            let clause = match p.peek() {
                Some(Tok::Word(w)) => w.to_ascii_uppercase(),
                _ => {
                    return Err(format!(
                        "expected SET, REMOVE, ADD or DELETE {}",
                        p.where_()
                    ))
                }
            };
            if seen.contains(&clause) {
                return Err(format!(
                    "The \"{clause}\" section can only be used once in an update expression"
                ));
            }
            p.at += 1;
            loop {
                let action = match clause.as_str() {
                    "SET" => {
                        let path = p.path()?;
                        p.expect("=")?;
                        let mut value = p.operand(true)?;
                        for (sym, plus) in [("+", true), ("-", false)] {
                            if p.eat(sym) {
                                value = Operand::Arith(
                                    Box::new(value),
                                    plus,
                                    Box::new(p.operand(true)?),
                                );
                                break;
                            }
                        }
                        Action::Set(path, value)
                    }
                    "REMOVE" => Action::Remove(p.path()?),
                    "ADD" => Action::Add(p.path()?, p.operand(true)?),
                    "DELETE" => Action::Delete(p.path()?, p.operand(true)?),
                    other => {
                        return Err(format!("Invalid UpdateExpression: unknown clause {other}"))
                    }
                };
                actions.push(action);
                if !p.eat(",") {
                    break;
                }
            }
            seen.push(clause);
        }
        if actions.is_empty() {
            return Err("Invalid UpdateExpression: The expression can not be empty;".into());
        }
        let u = Update(actions);
        let paths = u.paths();
        for (i, a) in paths.iter().enumerate() {
            if paths[..i].contains(a) {
                return Err(format!(
                    "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [{a}], path two: [{a}]"
                ));
            }
        }
        Ok(u)
    }

    /// The attributes the update writes or removes.
    pub fn paths(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(|a| match a {
                Action::Set(p, _)
                | Action::Remove(p)
                | Action::Add(p, _)
                | Action::Delete(p, _) => p.as_str(),
            })
            .collect()
    }

    /// The item after the update; every action reads the item as it was before.
    pub fn apply(&self, old: &Item) -> Result<Item, String> {
        let mut new = old.clone();
        for a in &self.0 {
            match a {
                Action::Set(p, v) => {
                    let v = value_of(v, old).ok_or_else(|| {
                        format!("The provided expression refers to an attribute that does not exist in the item (or an operand of the wrong type) in SET {p}")
                    })?;
                    new.insert(p.clone(), v);
                }
                Action::Remove(p) => {
                    new.remove(p);
                }
                Action::Add(p, v) => {
                    let v = value_of(v, old).unwrap_or(Value::Null);
                    let merged = match (old.get(p), v.as_object().and_then(|o| o.iter().next())) {
                        (None, Some(_)) => v.clone(),
                        (Some(cur), Some((ty, add_v))) => match (ty.as_str(), cur.get(ty)) {
                            ("N", Some(Value::String(n))) => serde_json::json!({
                                "N": add(n, add_v.as_str().unwrap_or("0"), true).ok_or("ADD: not a number")?
                            }),
                            ("SS" | "NS" | "BS", Some(Value::Array(set))) => {
                                let mut set = set.clone();
                                for x in add_v.as_array().into_iter().flatten() {
                                    if !set.contains(x) {
                                        set.push(x.clone());
                                    }
                                }
                                serde_json::json!({ ty: set })
                            }
                            _ => return Err(format!("An operand in the update expression has an incorrect data type (ADD {p})")),
                        },
                        _ => return Err(format!("ADD {p} needs a number or a set")),
                    };
                    new.insert(p.clone(), merged);
                }
                Action::Delete(p, v) => {
                    let v = value_of(v, old).unwrap_or(Value::Null);
                    let Some((ty, gone)) = v.as_object().and_then(|o| o.iter().next()) else {
                        return Err(format!("DELETE {p} needs a set"));
                    };
                    if let Some(Value::Array(set)) = old.get(p).and_then(|c| c.get(ty)) {
                        let gone = gone.as_array().cloned().unwrap_or_default();
                        let left: Vec<Value> =
                            set.iter().filter(|x| !gone.contains(x)).cloned().collect();
                        if left.is_empty() {
                            new.remove(p);
                        } else {
                            new.insert(p.clone(), serde_json::json!({ ty: left }));
                        }
                    }
                }
            }
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        v.as_object().unwrap().clone()
    }

    fn holds(expr: &str, it: &Item) -> bool {
        let names = json!({"#n": "name", "#c": "count"});
        let values = json!({":one": {"N": "1"}, ":five": {"N": "5"}, ":ten": {"N": "10"}, ":a": {"S": "a"}, ":al": {"S": "al"}, ":s": {"S": "S"}, ":t": {"S": "tag"}});
        let n = Names {
            names: names.as_object().unwrap(),
            values: values.as_object().unwrap(),
        };
        Condition::parse(expr, &n).unwrap().holds(it)
    }

    #[test]
    fn conditions() {
        let it = item(
            json!({"id": {"S": "x"}, "name": {"S": "alice"}, "count": {"N": "5"}, "tags": {"SS": ["tag", "b"]}}),
        );
        for yes in [
            "attribute_exists(id)",
            "attribute_not_exists(missing)",
            "#c = :five AND begins_with(#n, :al)",
            "#c BETWEEN :one AND :ten",
            "#c IN (:one, :five)",
            "NOT #c < :five",
            "(#c > :ten OR #c >= :five) and contains(tags, :t)",
            "size(#n) = :five",
            "attribute_type(#n, :s)",
            "#c <> :one",
        ] {
            assert!(holds(yes, &it), "{yes}");
        }
        for no in [
            "attribute_not_exists(id)",
            "#c > :ten",
            "missing = :one",
            "#n = :five",
            "begins_with(#n, :a) AND #c < :one",
        ] {
            assert!(!holds(no, &it), "{no}");
        }
        // Numbers compare as numbers.
        assert!(holds("#c < :ten", &it));
        let empty = Map::new();
        let n = Names {
            names: &empty,
            values: &empty,
        };
        for (bad, says) in [
            ("a.b = :x", "nested paths"),
            ("a = :x", ":x"),
            ("#a = b", "#a"),
            ("a =", "attribute name"),
            ("a = b c", "unexpected `c`"),
            ("bogus(a)", "Invalid function name"),
        ] {
            let e = Condition::parse(bad, &n).err().unwrap();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    proptest::proptest! {
        /// Any text, and any mix of the grammar's own pieces, parses to an expression or a
        /// message: never a panic. What parses evaluates on an item without one too.
        #[test]
        fn never_panics(
            text in "\\PC{0,40}",
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "a", "#n", ":v", "(", ")", ",", "=", "<>", "<", ">=", "+", "-", "AND", "OR",
                "NOT", "BETWEEN", "IN", "SET", "REMOVE", "ADD", "DELETE", "size(", "begins_with(",
                "attribute_exists(", "if_not_exists(", "list_append(", ".", "[0]",
            ]), 0..14),
        ) {
            let names = json!({"#n": "n"});
            let values = json!({":v": {"N": "1"}});
            let n = Names { names: names.as_object().unwrap(), values: values.as_object().unwrap() };
            let it = item(json!({"a": {"N": "2"}, "n": {"L": []}}));
            for t in [text, pieces.join(" ")] {
                if let Ok(c) = Condition::parse(&t, &n) {
                    let _ = c.holds(&it);
                }
                if let Ok(u) = Update::parse(&t, &n) {
                    let _ = u.apply(&it);
                }
            }
        }
    }

    #[test]
    fn updates() {
        let names = json!({"#c": "count"});
        let values = json!({":one": {"N": "1"}, ":zero": {"N": "0"}, ":l": {"L": [{"S": "z"}]}, ":s": {"SS": ["b", "c"]}, ":d": {"SS": ["a"]}, ":v": {"S": "v"}, ":half": {"N": "0.5"}});
        let n = Names {
            names: names.as_object().unwrap(),
            values: values.as_object().unwrap(),
        };
        let old = item(
            json!({"id": {"S": "x"}, "count": {"N": "41"}, "gone": {"S": "g"}, "list": {"L": [{"S": "y"}]}, "set": {"SS": ["a", "b"]}, "other": {"SS": ["a", "b"]}}),
        );
        let u = Update::parse(
            "SET #c = #c + :one, fresh = if_not_exists(fresh, :zero) - :one, list = list_append(list, :l), f = :half + :half REMOVE gone ADD set :s, visits :one DELETE other :d",
            &n,
        )
        .unwrap();
        let new = u.apply(&old).unwrap();
        assert_eq!(new["count"], json!({"N": "42"}));
        assert_eq!(new["fresh"], json!({"N": "-1"}));
        assert_eq!(new["f"], json!({"N": "1"}));
        assert_eq!(new["list"], json!({"L": [{"S": "y"}, {"S": "z"}]}));
        assert!(!new.contains_key("gone"));
        assert_eq!(new["visits"], json!({"N": "1"}));
        assert_eq!(new["set"], json!({"SS": ["a", "b", "c"]}));
        assert_eq!(new["other"], json!({"SS": ["b"]}));
        assert_eq!(
            u.paths(),
            ["count", "fresh", "list", "f", "gone", "set", "visits", "other"]
        );
        for (bad, says) in [
            ("ADD s :s DELETE s :d", "overlap"),
            ("SET a = :v SET b = :v", "only be used once"),
            ("", "can not be empty"),
            ("SET a = missing", "does not exist"),
            ("FROB a", "unknown clause"),
        ] {
            let e = Update::parse(bad, &n)
                .and_then(|u| u.apply(&old).map(|_| ()))
                .err()
                .unwrap();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
