//! Mainland mobile numbers: `1[3-9]` followed by 9 digits, optional `+86` prefix.

use super::{IdError, first_non_digit, normalize};

/// A validated 11-digit mobile number (without country code).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

impl Mobile {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let n = normalize(raw);
        if n.is_empty() {
            return Err(IdError::Empty);
        }
        let s = n
            .strip_prefix("+86")
            .or_else(|| (n.len() == 13).then(|| n.strip_prefix("86")).flatten())
            .unwrap_or(&n);
        if let Some((pos, ch)) = first_non_digit(s, None) {
            return Err(IdError::Character { pos, ch });
        }
        if s.len() != 11 {
            return Err(IdError::Length {
                got: s.len(),
                expected: "11",
            });
        }
        let b = s.as_bytes();
        if b[0] != b'1' {
            return Err(IdError::Mobile {
                why: "must start with 1",
            });
        }
        if !(b'3'..=b'9').contains(&b[1]) {
            return Err(IdError::Mobile {
                why: "second digit must be 3 to 9",
            });
        }
        Ok(Mobile(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles() {
        assert_eq!(
            Mobile::parse("+86 138-0013-8000").unwrap().as_str(),
            "13800138000"
        );
        assert_eq!(
            Mobile::parse("８６１３８００１３８０００")
                .unwrap()
                .as_str(),
            "13800138000"
        );
        assert!(matches!(
            Mobile::parse("12800138000"),
            Err(IdError::Mobile { .. })
        ));
        assert!(matches!(
            Mobile::parse("23800138000"),
            Err(IdError::Mobile { .. })
        ));
        assert!(matches!(
            Mobile::parse("1380013800"),
            Err(IdError::Length { got: 10, .. })
        ));
        assert!(matches!(
            Mobile::parse("1380013800a"),
            Err(IdError::Character { pos: 11, .. })
        ));
    }
}
