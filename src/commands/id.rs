//! `gdx id check`: validate coded identifiers and say why they fail.

use std::process::ExitCode;

use gdx_catalog::IdKind;

use crate::cli::{IdCommand, IdKindArg};

pub(crate) fn run(cmd: IdCommand) -> anyhow::Result<ExitCode> {
    let IdCommand::Check { values, kind } = cmd;
    let mut all_valid = true;
    for value in &values {
        let (ok, line) = check(value, kind.map(to_kind));
        all_valid &= ok;
        println!("{line}");
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn to_kind(k: IdKindArg) -> IdKind {
    match k {
        IdKindArg::ResidentId => IdKind::ResidentId,
        IdKindArg::Uscc => IdKind::Uscc,
        IdKindArg::BankCard => IdKind::BankCard,
        IdKindArg::Mobile => IdKind::Mobile,
    }
}

/// One output line for one value: `VALUE: valid KIND (canonical)` or
/// `VALUE: invalid: KIND: reason; KIND: reason`.
pub(crate) fn check(value: &str, kind: Option<IdKind>) -> (bool, String) {
    let kinds = kind.map_or_else(|| IdKind::candidates(value), |k| vec![k]);
    let mut reasons = Vec::new();
    for k in kinds {
        match k.check(value) {
            Ok(canonical) if canonical == value => return (true, format!("{value}: valid {k}")),
            Ok(canonical) => {
                return (
                    true,
                    format!("{value}: valid {k} (normalised: {canonical})"),
                );
            }
            Err(e) => reasons.push(format!("{k}: {}", e.detail())),
        }
    }
    (false, format!("{value}: invalid: {}", reasons.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_why() {
        assert_eq!(
            check("11010519491231002X", None),
            (true, "11010519491231002X: valid resident_id".into())
        );
        let (ok, line) = check("11010519491231002x", None);
        assert!(
            ok && line.contains("normalised: 11010519491231002X"),
            "{line}"
        );
        let (ok, line) = check("110105194912310021", None);
        assert!(!ok);
        assert!(
            line.contains("resident_id: check digit is 1, expected X"),
            "{line}"
        );
        assert!(line.contains("uscc:"), "{line}");
        let (ok, line) = check("91350100M000100Y43", Some(IdKind::ResidentId));
        assert!(
            !ok && line.contains("resident_id: invalid character"),
            "{line}"
        );
    }
}
