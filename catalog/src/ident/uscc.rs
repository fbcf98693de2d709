//! Unified social credit code (统一社会信用代码, GB 32100-2015, MOD 31).
//!
//! Layout: 1 registration authority, 1 organisation type, 6 administrative area,
//! 9 organisation code, 1 check character, over the 31-character alphabet without I O S V Z.

use super::{IdError, normalize};

const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// A validated 18-character unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uscc(String);

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

pub(crate) fn check_char(body: &[u8]) -> Option<char> {
    let mut sum = 0u32;
    for (&c, w) in body.iter().take(17).zip(WEIGHTS) {
        sum += value_of(c)? * w;
    }
    Some(ALPHABET[((31 - sum % 31) % 31) as usize] as char)
}

impl Uscc {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let s = normalize(raw);
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        let got = s.chars().count();
        if got != 18 {
            return Err(IdError::Length {
                got,
                expected: "18",
            });
        }
        if let Some((i, ch)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii() || value_of(*c as u8).is_none())
        {
            return Err(IdError::Character { pos: i + 1, ch });
        }
        let b = s.as_bytes();
        if !b[2..8].iter().all(u8::is_ascii_digit) {
            return Err(IdError::Area {
                code: s[2..8].to_owned(),
            });
        }
        let expected = check_char(b).expect("alphabet checked");
        let got = b[17] as char;
        if got != expected {
            return Err(IdError::Checksum { got, expected });
        }
        Ok(Uscc(s))
    }

    /// Builds a valid code from authority + type (2 chars), area and a 9-character
    /// organisation code over the alphabet (used by the synthetic district).
    pub fn compose(prefix: &str, area: u32, org: &str) -> Option<Self> {
        let body = format!("{prefix}{area:06}{org}");
        if body.len() != 17 {
            return None;
        }
        let check = check_char(body.as_bytes())?;
        Some(Uscc(format!("{body}{check}")))
    }

    /// The alphabet the code is written in, for generators.
    pub fn alphabet() -> &'static [u8; 31] {
        ALPHABET
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn area_code(&self) -> &str {
        &self.0[2..8]
    }
}

impl std::fmt::Display for Uscc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Uscc {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "91350100M000100Y43";

    #[test]
    fn known_valid_code() {
        let u = Uscc::parse(VALID).unwrap();
        assert_eq!(u.area_code(), "350100");
        assert_eq!(Uscc::parse(" 91350100m000100y43 ").unwrap(), u);
    }

    #[test]
    fn every_single_character_change_is_rejected() {
        for pos in 0..18 {
            for &c in ALPHABET.iter() {
                if c == VALID.as_bytes()[pos] {
                    continue;
                }
                let mut b = VALID.as_bytes().to_vec();
                b[pos] = c;
                let s = String::from_utf8(b).unwrap();
                assert!(Uscc::parse(&s).is_err(), "{s} accepted");
            }
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(matches!(
            Uscc::parse("91350100M000100Y4"),
            Err(IdError::Length { got: 17, .. })
        ));
        assert!(matches!(
            Uscc::parse("91350100M000100I43"),
            Err(IdError::Character { pos: 16, ch: 'I' })
        ));
        assert!(matches!(
            Uscc::parse("91350100M000100Y44"),
            Err(IdError::Checksum {
                got: '4',
                expected: '3'
            })
        ));
        assert!(matches!(
            Uscc::parse("913A0100M000100Y43"),
            Err(IdError::Area { .. })
        ));
    }

    #[test]
    fn compose_is_valid() {
        let u = Uscc::compose("91", 420106, "MA4K00001").unwrap();
        assert_eq!(Uscc::parse(u.as_str()).unwrap(), u);
        assert!(Uscc::compose("91", 420106, "MA4K0000").is_none());
    }
}
