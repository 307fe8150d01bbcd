//! Matching request paths against the service's routes, the way API Gateway does: literal
//! segments beat `{param}` segments, which beat a final `{proxy+}`.

use std::collections::BTreeMap;

/// One segment of a route template.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Param(String),
    Greedy(String),
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct Route<T> {
    /// Upper-case method or `ANY`.
    pub method: String,
    /// The template as written (`/items/{id}`).
    pub template: String,
    segs: Vec<Seg>,
    /// What the route leads to.
    pub target: T,
}

/// A route table.
#[derive(Debug, Clone)]
pub struct Table<T> {
    routes: Vec<Route<T>>,
}

fn parse(template: &str) -> Vec<Seg> {
    template
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                Some(p) if p.ends_with('+') => Seg::Greedy(p.trim_end_matches('+').to_owned()),
                Some(p) => Seg::Param(p.to_owned()),
                None => Seg::Lit(s.to_owned()),
            },
        )
        .collect()
}

impl<T: Clone> Table<T> {
    /// Builds a table, most specific routes first.
    pub fn new(routes: Vec<(String, String, T)>) -> Self {
        let mut routes: Vec<Route<T>> = routes
            .into_iter()
            .map(|(method, template, target)| Route {
                segs: parse(&template),
                method,
                template,
                target,
            })
            .collect();
        // Specificity: more literal segments first, then fewer greedy ones, then exact methods.
        routes.sort_by_key(|r| {
            let lits = r.segs.iter().filter(|s| matches!(s, Seg::Lit(_))).count();
            let greedy = r.segs.iter().any(|s| matches!(s, Seg::Greedy(_)));
            (
                greedy,
                std::cmp::Reverse(lits),
                std::cmp::Reverse(r.segs.len()),
                r.method == "ANY",
            )
        });
        Table { routes }
    }

    /// Every route.
    pub fn routes(&self) -> &[Route<T>] {
        &self.routes
    }

    /// The route for a method and path, with its path parameters.
    pub fn find(&self, method: &str, path: &str) -> Option<(&Route<T>, BTreeMap<String, String>)> {
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        self.routes
            .iter()
            .filter(|r| r.method == method || r.method == "ANY")
            .find_map(|r| matches(&r.segs, &parts).map(|p| (r, p)))
    }

    /// Whether any route has this path (for 405 vs 404, and CORS preflight).
    pub fn find_any_method(&self, path: &str) -> Option<&Route<T>> {
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        self.routes
            .iter()
            .find(|r| matches(&r.segs, &parts).is_some())
    }
}

fn matches(segs: &[Seg], parts: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Greedy(name) => {
                if i >= parts.len() {
                    return None;
                }
                params.insert(
                    name.clone(),
                    crate::events::percent_decode_path(&parts[i..].join("/")),
                );
                return Some(params);
            }
            Seg::Lit(l) => {
                if parts.get(i) != Some(&l.as_str()) {
                    return None;
                }
            }
            Seg::Param(name) => {
                let v = parts.get(i)?;
                params.insert(name.clone(), crate::events::percent_decode_path(v));
            }
        }
    }
    (segs.len() == parts.len()).then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specificity_and_params() {
        let t = Table::new(vec![
            ("ANY".into(), "/{proxy+}".into(), 0),
            ("GET".into(), "/items/{id}".into(), 1),
            ("GET".into(), "/items/special".into(), 2),
            ("POST".into(), "/items".into(), 3),
            ("GET".into(), "/".into(), 4),
        ]);
        assert_eq!(t.find("GET", "/items/special").unwrap().0.target, 2);
        let (r, p) = t.find("GET", "/items/a%20b").unwrap();
        assert_eq!((r.target, p["id"].as_str()), (1, "a b"));
        assert_eq!(t.find("POST", "/items").unwrap().0.target, 3);
        let (r, p) = t.find("DELETE", "/x/y/z").unwrap();
        assert_eq!((r.target, p["proxy"].as_str()), (0, "x/y/z"));
        assert_eq!(t.find("GET", "/").unwrap().0.target, 4);
        assert!(Table::new(vec![("GET".into(), "/a".into(), 0)])
            .find("GET", "/b")
            .is_none());
    }
}
