//! Resident identity number (公民身份号码, GB 11643-1999, ISO 7064 MOD 11-2).
//!
//! Layout: 6-digit area code, 8-digit birth date (YYYYMMDD), 3-digit sequence (odd = male),
//! 1 check character. 15-digit legacy numbers (2-digit year, no check) are converted to 18.

use chrono::{Datelike, NaiveDate};

use super::{IdError, first_non_digit, normalize};

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// A validated 18-character resident identity number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResidentId(String);

impl ResidentId {
    /// Parses and validates against today's date (birth dates must lie in the past).
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        Self::parse_at(raw, chrono::Utc::now().date_naive())
    }

    /// Parses and validates, treating `today` as the latest possible birth date.
    pub fn parse_at(raw: &str, today: NaiveDate) -> Result<Self, IdError> {
        let s = normalize(raw);
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        let s = match s.chars().count() {
            18 => s,
            15 => {
                if let Some((pos, ch)) = first_non_digit(&s, None) {
                    return Err(IdError::Character { pos, ch });
                }
                // Legacy numbers were issued to people born in the 1900s.
                let body = format!("{}19{}", &s[..6], &s[6..]);
                let check = check_char(&body);
                format!("{body}{check}")
            }
            got => {
                return Err(IdError::Length {
                    got,
                    expected: "18 (or a 15-digit legacy number)",
                });
            }
        };
        if let Some((pos, ch)) = first_non_digit(&s, Some('X')) {
            return Err(IdError::Character { pos, ch });
        }
        if s.starts_with('0') {
            return Err(IdError::Area {
                code: s[..6].to_owned(),
            });
        }
        birth_date_of(&s, today)?;
        let expected = check_char(&s[..17]);
        let got = s.as_bytes()[17] as char;
        if got != expected {
            return Err(IdError::Checksum { got, expected });
        }
        Ok(ResidentId(s))
    }

    /// Builds a valid number from its parts (used by the synthetic district).
    pub fn compose(area: u32, birth: NaiveDate, sequence: u16) -> Self {
        let body = format!(
            "{area:06}{:04}{:02}{:02}{:03}",
            birth.year(),
            birth.month(),
            birth.day(),
            sequence % 1000
        );
        let check = check_char(&body);
        ResidentId(format!("{body}{check}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn area_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> NaiveDate {
        parse_date(&self.0[6..14]).expect("validated on construction")
    }

    /// Odd sequence numbers are issued to men.
    pub fn is_male(&self) -> bool {
        (self.0.as_bytes()[16] - b'0') % 2 == 1
    }

    /// The 15-digit legacy form (only meaningful for people born in the 1900s).
    pub fn to_legacy(&self) -> Option<String> {
        (&self.0[6..8] == "19").then(|| format!("{}{}", &self.0[..6], &self.0[8..17]))
    }
}

impl std::fmt::Display for ResidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ResidentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The MOD 11-2 check character of the first 17 digits of `body`.
pub(crate) fn check_char(body: &str) -> char {
    let sum: u32 = body
        .bytes()
        .take(17)
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] as char
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let y = s[..4].parse().ok()?;
    let m = s[4..6].parse().ok()?;
    let d = s[6..8].parse().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

fn birth_date_of(s: &str, today: NaiveDate) -> Result<NaiveDate, IdError> {
    let raw = &s[6..14];
    let date = parse_date(raw).ok_or_else(|| IdError::BirthDate {
        date: raw.to_owned(),
        why: "not a calendar date",
    })?;
    if date > today {
        return Err(IdError::BirthDate {
            date: raw.to_owned(),
            why: "in the future",
        });
    }
    if date.year() < 1800 {
        return Err(IdError::BirthDate {
            date: raw.to_owned(),
            why: "before 1800",
        });
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
    }

    #[test]
    fn known_valid_numbers() {
        for v in ["11010519491231002X", "440524188001010014"] {
            let id = ResidentId::parse_at(v, today()).unwrap();
            assert_eq!(id.as_str(), v);
        }
        let id = ResidentId::parse_at("11010519491231002X", today()).unwrap();
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
        );
        assert!(!id.is_male());
        assert_eq!(id.area_code(), "110105");
    }

    #[test]
    fn every_single_digit_change_is_rejected() {
        for v in ["11010519491231002X", "440524188001010014"] {
            for pos in 0..18 {
                let orig = v.as_bytes()[pos];
                let alphabet: &[u8] = if pos == 17 {
                    b"0123456789X"
                } else {
                    b"0123456789"
                };
                for &c in alphabet {
                    if c == orig {
                        continue;
                    }
                    let mut b = v.as_bytes().to_vec();
                    b[pos] = c;
                    let s = String::from_utf8(b).unwrap();
                    assert!(ResidentId::parse_at(&s, today()).is_err(), "{s} accepted");
                }
            }
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let t = today();
        assert!(matches!(
            ResidentId::parse_at("1101051949", t),
            Err(IdError::Length { got: 10, .. })
        ));
        assert!(matches!(
            ResidentId::parse_at("11010519491231002Y", t),
            Err(IdError::Character { pos: 18, ch: 'Y' })
        ));
        assert!(matches!(
            ResidentId::parse_at("110105194913310028", t),
            Err(IdError::BirthDate {
                why: "not a calendar date",
                ..
            })
        ));
        assert!(matches!(
            ResidentId::parse_at("11010519491231002", t),
            Err(IdError::Length { .. })
        ));
        assert!(matches!(
            ResidentId::parse_at("110105194912310021", t),
            Err(IdError::Checksum {
                got: '1',
                expected: 'X'
            })
        ));
        let future = ResidentId::compose(420106, NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(), 11);
        assert!(matches!(
            ResidentId::parse_at(future.as_str(), t),
            Err(IdError::BirthDate {
                why: "in the future",
                ..
            })
        ));
        assert_eq!(ResidentId::parse_at("", t), Err(IdError::Empty));
    }

    #[test]
    fn normalised_forms_are_accepted() {
        let t = today();
        for v in [
            " 11010519491231002x",
            "１１０１０５１９４９１２３１００２Ｘ",
            "110105-19491231-002X",
        ] {
            assert_eq!(
                ResidentId::parse_at(v, t).unwrap().as_str(),
                "11010519491231002X"
            );
        }
    }

    #[test]
    fn legacy_numbers_convert() {
        let id = ResidentId::parse_at("11010519491231002X", today()).unwrap();
        let legacy = id.to_legacy().unwrap();
        assert_eq!(legacy, "110105491231002");
        assert_eq!(ResidentId::parse_at(&legacy, today()).unwrap(), id);
        assert!(matches!(
            ResidentId::parse_at("11010549123100A", today()),
            Err(IdError::Character { pos: 15, .. })
        ));
    }

    #[test]
    fn compose_round_trips() {
        let birth = NaiveDate::from_ymd_opt(1956, 2, 29).unwrap();
        let id = ResidentId::compose(420106, birth, 123);
        let back = ResidentId::parse_at(id.as_str(), today()).unwrap();
        assert_eq!(back.birth_date(), birth);
        assert!(back.is_male());
    }
}
