//! Cloud resource names made from service, stage and resource names: the characters a cloud
//! allows, and a length limit kept by a hash (so long names stay distinct and stable).

use sha2::{Digest, Sha256};

/// `s` in lower case with every character but ASCII letters and digits as `-`.
pub fn lower_kebab(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// `name` if it is at most `max` bytes, else its head and 8 hex digits of its hash.
pub fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    let mut head: String = name.chars().take(max - 9).collect();
    while head.len() > max - 9 {
        head.pop();
    }
    format!("{}-{}", head.trim_end_matches(['-', '.', '/']), &hash[..8])
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_fit() {
        assert_eq!(super::lower_kebab("Shop_Dev.1"), "shop-dev-1");
        assert_eq!(super::fit("short", 10), "short");
        let long = super::fit(&"a".repeat(80), 63);
        assert_eq!(long.len(), 63);
        assert_ne!(long, super::fit(&format!("{}b", "a".repeat(80)), 63));
    }
}
