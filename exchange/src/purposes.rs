//! Registered purposes (用途): the codes a caller may name in `X-Purpose`.
//!
//! Data flow: `deploy/exchange/purposes.toml` (built in; `--purposes FILE` replaces it) →
//! [`Purposes`] → every data call's purpose is looked up: missing is a 400, unknown a 403.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The built-in purpose list.
pub const DEFAULT_PURPOSES: &str = include_str!("../../deploy/exchange/purposes.toml");

#[derive(Debug, Clone, Deserialize)]
struct File {
    purposes: Vec<Purpose>,
}

/// One registered purpose.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Purpose {
    pub code: String,
    pub name: String,
    /// The legal basis the purpose rests on.
    pub legal_basis: String,
}

/// The purposes callers may state.
#[derive(Debug, Clone)]
pub struct Purposes {
    by_code: BTreeMap<String, Purpose>,
}

impl Purposes {
    pub fn parse(text: &str) -> Result<Self, String> {
        let f: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let mut by_code = BTreeMap::new();
        for p in f.purposes {
            let ok = !p.code.is_empty()
                && p.code.len() <= 64
                && p.code.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.'
                });
            if !ok {
                return Err("a purpose code must be 1 to 64 of a-z, 0-9, '_', '.'".into());
            }
            if p.legal_basis.trim().is_empty() {
                return Err(format!("purpose {} has no legal basis", p.code));
            }
            if by_code.insert(p.code.clone(), p).is_some() {
                return Err("a purpose code is listed twice".into());
            }
        }
        Ok(Self { by_code })
    }

    pub fn builtin() -> Self {
        Self::parse(DEFAULT_PURPOSES).expect("the built-in purposes parse")
    }

    pub fn get(&self, code: &str) -> Option<&Purpose> {
        self.by_code.get(code)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Purpose> {
        self.by_code.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_purposes_parse_and_bad_files_are_refused() {
        let p = Purposes::builtin();
        assert!(p.get("social_assistance").is_some());
        assert!(p.get("marketing").is_none());
        assert!(
            Purposes::parse("purposes = [{ code = \"A B\", name = \"x\", legal_basis = \"y\" }]")
                .is_err()
        );
        assert!(
            Purposes::parse("purposes = [{ code = \"a\", name = \"x\", legal_basis = \"\" }]")
                .is_err()
        );
    }
}
