//! The ledger's rules over a real Delta table in a temp dir: steps in order, the budget
//! under concurrent approvals, one instruction per firm under concurrent and repeated
//! disbursements, the bank's file reconciled, a failed payment re-issued once, top-ups and
//! highest-only within a group.

use chrono::NaiveDate;
use gdx_lake::LakeLocation;

use super::bank::{disburse, reconcile};
use super::ledger::{self, NewLine, StepError, kind, transact};
use super::run::Decision;
use super::settle::settle;
use super::steps::{Verdict, apply, approve, firms, issue, policy_of};
use super::*;

fn example(name: &str) -> String {
    EXAMPLES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
        .to_owned()
}

fn lake() -> (tempfile::TempDir, LakeLocation) {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    (dir, lake)
}

const A: &str = "91420106MA4K000001";
const B: &str = "91420106MA4K000002";
const C: &str = "91420106MA4K000003";

/// Records decisions as a decision run would (the lake's part is tested in tests/rewards.rs).
async fn decided(lake: &LakeLocation, id: &str, firms: &[(&str, i64)]) {
    transact(lake, |l| {
        let p = policy_of(l, id)?;
        let lines = firms
            .iter()
            .map(|(u, fen)| {
                let mut x = NewLine::about(kind::DECISION, &p, u);
                x.fen = Some(*fen);
                x.reason = Some("eligible".into());
                x
            })
            .collect();
        Ok((lines, ()))
    })
    .await
    .unwrap();
}

fn code(e: StepError) -> &'static str {
    match e {
        StepError::Refused { code, .. } => code,
        other => panic!("not a refusal: {other}"),
    }
}

async fn approve_all(lake: &LakeLocation, id: &str, firm: &str, steps: &[&str]) {
    for s in steps {
        approve(
            lake,
            id,
            firm,
            s,
            &Verdict::Approve,
            &format!("{s}-approver"),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_policy_is_issued_once_per_version() {
    let (_d, lake) = lake();
    let text = example("high_tech_first.toml");
    assert_eq!(
        issue(&lake, &text, "sti-sys").await.unwrap().outcome,
        "recorded"
    );
    assert_eq!(
        issue(&lake, &text, "sti-sys").await.unwrap().outcome,
        "already"
    );
    let changed = text.replace("budget = \"6000000.00\"", "budget = \"5000000.00\"");
    assert_eq!(
        code(issue(&lake, &changed, "sti-sys").await.unwrap_err()),
        "version_not_newer"
    );
    let v2 = changed.replace("version = 1", "version = 2");
    issue(&lake, &v2, "sti-sys").await.unwrap();
    let l = ledger::load(&lake).await.unwrap();
    assert_eq!(policy_of(&l, "high-tech-first-2025").unwrap().version, 2);
    assert_eq!(l.policies().len(), 1);
    assert_eq!(
        code(issue(&lake, "policy = \"reward\"", "x").await.unwrap_err()),
        "policy_invalid"
    );
}

#[tokio::test]
async fn approvals_go_in_the_policys_order_after_the_application() {
    let (_d, lake) = lake();
    issue(&lake, &example("tax_contribution.toml"), "ndrc-sys")
        .await
        .unwrap();
    let id = "tax-contribution-2025";
    decided(&lake, id, &[(A, 5_000_000), (B, 10_000_000)]).await;
    let ok = &Verdict::Approve;
    // Not decided, not applied, not a step, not its turn.
    let e = approve(&lake, id, C, "ndrc", ok, "p").await.unwrap_err();
    assert!(matches!(e, StepError::Refused { missing: true, .. }));
    assert_eq!(
        code(approve(&lake, id, A, "ndrc", ok, "p").await.unwrap_err()),
        "no_application"
    );
    assert_eq!(
        code(apply(&lake, id, A, "6222-0001", "app").await.unwrap_err()),
        "account_invalid"
    );
    apply(&lake, id, A, "6222020200112233445", "app")
        .await
        .unwrap();
    assert_eq!(
        code(approve(&lake, id, A, "sti", ok, "p").await.unwrap_err()),
        "not_a_step"
    );
    assert_eq!(
        code(approve(&lake, id, A, "tax", ok, "p").await.unwrap_err()),
        "out_of_order"
    );
    let r = approve(&lake, id, A, "ndrc", ok, "p").await.unwrap();
    assert_eq!(r.status.as_deref(), Some("awaiting_approval:tax"));
    // A repeated approval writes nothing.
    let seq = ledger::load(&lake).await.unwrap().seq;
    assert_eq!(
        approve(&lake, id, A, "ndrc", ok, "p")
            .await
            .unwrap()
            .outcome,
        "already"
    );
    assert_eq!(ledger::load(&lake).await.unwrap().seq, seq);
    // A rejection needs a reason, and ends the reward.
    let no_reason = Verdict::Reject(" ".into());
    assert_eq!(
        code(
            approve(&lake, id, A, "tax", &no_reason, "p")
                .await
                .unwrap_err()
        ),
        "reason_required"
    );
    let why = Verdict::Reject("欠税未清".into());
    approve(&lake, id, A, "tax", &why, "p").await.unwrap();
    assert_eq!(
        code(approve(&lake, id, A, "finance", ok, "p").await.unwrap_err()),
        "rejected"
    );
    let l = ledger::load(&lake).await.unwrap();
    let f = firms(&l, id).unwrap();
    assert_eq!(f[0].status, "rejected");
    assert_eq!(f[0].rejection_reason.as_deref(), Some("欠税未清"));
    assert_eq!(f[0].approved_by, ["ndrc"]);
    // Accounts are masked in what readers see.
    let app = f[0].lines.iter().find(|x| x.kind == "application").unwrap();
    assert_ne!(app.account.as_deref(), Some("6222020200112233445"));
    assert_eq!(f[1].status, "awaiting_application");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_last_approvals_never_exceed_the_budget() {
    let (_d, lake) = lake();
    // A budget of 500,000 and three firms decided at 200,000 (as a version with a lower
    // budget leaves them): only two fit.
    let text = example("high_tech_first.toml").replace("6000000.00", "500000.00");
    issue(&lake, &text, "sti-sys").await.unwrap();
    let id = "high-tech-first-2025";
    decided(
        &lake,
        id,
        &[(A, 20_000_000), (B, 20_000_000), (C, 20_000_000)],
    )
    .await;
    for f in [A, B, C] {
        approve_all(&lake, id, f, &["sti"]).await;
    }
    let mut tasks = Vec::new();
    for f in [A, B, C] {
        let lake = lake.clone();
        tasks.push(tokio::spawn(async move {
            approve(&lake, id, f, "finance", &Verdict::Approve, "fin").await
        }));
    }
    let mut ok = 0;
    let mut refused = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => refused.push(code(e)),
        }
    }
    assert_eq!(
        (ok, refused.as_slice()),
        (2, ["budget_exhausted"].as_slice())
    );
    let l = ledger::load(&lake).await.unwrap();
    let p = policy_of(&l, id).unwrap();
    let approved: i64 = l
        .firms(id, "2025")
        .values()
        .filter(|f| f.approved(&p))
        .map(|f| f.fen())
        .sum();
    assert_eq!(approved, 40_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_instruction_per_firm_however_often_disbursed() {
    let (_d, lake) = lake();
    issue(&lake, &example("high_tech_first.toml"), "sti-sys")
        .await
        .unwrap();
    let id = "high-tech-first-2025";
    decided(
        &lake,
        id,
        &[(A, 20_000_000), (B, 20_000_000), (C, 20_000_000)],
    )
    .await;
    for (f, acct) in [(A, "6222000000000001"), (B, "6222000000000002")] {
        approve_all(&lake, id, f, &["sti", "finance"]).await;
        apply(&lake, id, f, acct, "app").await.unwrap();
    }
    approve_all(&lake, id, C, &["sti"]).await;
    // Four disbursements at once, then one more.
    let mut tasks = Vec::new();
    for i in 0..4 {
        let lake = lake.clone();
        tasks.push(tokio::spawn(async move {
            disburse(&lake, id, &format!("fin-{i}")).await
        }));
    }
    let mut issued = 0;
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        issued += r.issued;
        assert_eq!(
            r.batch.len(),
            2,
            "every disbursement returns the whole batch"
        );
    }
    assert_eq!(issued, 2);
    let again = disburse(&lake, id, "fin").await.unwrap();
    assert_eq!(again.issued, 0);
    assert_eq!(again.waiting.get("awaiting_approval:finance"), Some(&1));
    let l = ledger::load(&lake).await.unwrap();
    let instructions = l
        .lines
        .iter()
        .filter(|x| x.kind == kind::INSTRUCTION)
        .count();
    assert_eq!(instructions, 2);
    // The account cannot change while the payment is out.
    assert_eq!(
        code(
            apply(&lake, id, A, "6222999999999999", "app")
                .await
                .unwrap_err()
        ),
        "already_disbursed"
    );
}

#[tokio::test]
async fn the_banks_file_is_reconciled_and_a_failed_payment_reissued_once() {
    let (_d, lake) = lake();
    issue(&lake, &example("high_tech_first.toml"), "sti-sys")
        .await
        .unwrap();
    let id = "high-tech-first-2025";
    decided(
        &lake,
        id,
        &[(A, 20_000_000), (B, 20_000_000), (C, 20_000_000)],
    )
    .await;
    for (f, acct) in [
        (A, "6222000000000001"),
        (B, "6222000000000002"),
        (C, "6222000000000003"),
    ] {
        approve_all(&lake, id, f, &["sti", "finance"]).await;
        apply(&lake, id, f, acct, "app").await.unwrap();
    }
    let batch = disburse(&lake, id, "fin").await.unwrap().batch;
    let by = |u: &str| {
        batch
            .iter()
            .find(|i| i.uscc == u)
            .unwrap()
            .reference
            .clone()
    };
    let (ra, rb, rc) = (by(A), by(B), by(C));
    let file = format!(
        "\u{feff}账号,金额,状态,业务参考号\n\
         6222000000000001,200000.00,成功,{ra}\n\
         6222000000000002,200000.00,失败,{rb}\n\
         6222000000000003,199999.00,success,{rc}\n\
         6222000000000009,1.00,success,RW9999999000000\n\
         6222000000000001,200000.00,success,{ra}\n\
         6222000000000001,abc,success,{ra}\n\
         6222000000000001,200000.00,pending,{ra}\n\
         ,200000.00,success,{ra}\n"
    );
    let r = reconcile(&lake, &file, "fin", |_| true).await.unwrap();
    assert_eq!(r.rows, 8);
    assert_eq!(r.recorded.get("paid"), Some(&1));
    assert_eq!(r.recorded.get("failed"), Some(&1));
    assert_eq!(r.recorded.get("mismatched"), Some(&1));
    assert_eq!(r.paid_amount, "200000.00");
    assert_eq!(r.reissuable, 1);
    let rules: Vec<(usize, &str)> = r
        .refused
        .iter()
        .map(|x| (x.line, x.rule.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            (5, "unknown_reference"),
            (6, "duplicate_in_file"),
            (7, "amount_invalid"),
            (8, "status_unknown"),
            (9, "field_missing:account"),
        ]
    );
    // The same file again: nothing new; a different result for a reconciled payment refused.
    let again = reconcile(&lake, &file, "fin", |_| true).await.unwrap();
    assert!(again.recorded.is_empty());
    assert_eq!(again.already, 3);
    let contradicting =
        format!("account,amount,status,reference\n6222000000000001,200000.00,returned,{ra}\n");
    let c = reconcile(&lake, &contradicting, "fin", |_| true)
        .await
        .unwrap();
    assert_eq!(c.refused[0].rule, "already_reconciled");
    // Who may not reconcile a policy's payments is refused row by row.
    let denied = reconcile(&lake, &file, "x", |_| false).await.unwrap();
    assert!(denied.refused.iter().any(|x| x.rule == "not_permitted"));
    // B failed: a new account, then one re-issue; C mismatched waits for people.
    apply(&lake, id, B, "6222000000000022", "app")
        .await
        .unwrap();
    let d = disburse(&lake, id, "fin").await.unwrap();
    assert_eq!((d.issued, d.reissued), (1, 1));
    assert_eq!(d.waiting.get("mismatched"), Some(&1));
    let re = d.batch.iter().find(|i| i.uscc == B).unwrap();
    assert_eq!(re.reissue_of.as_deref(), Some(rb.as_str()));
    assert_eq!(re.account, "6222000000000022");
    // The re-issue is returned: no third instruction, ever.
    let back = format!(
        "account,amount,status,reference\n6222000000000022,200000.00,returned,{}\n",
        re.reference
    );
    reconcile(&lake, &back, "fin", |_| true).await.unwrap();
    let d = disburse(&lake, id, "fin").await.unwrap();
    assert_eq!(d.issued, 0);
    assert_eq!(d.waiting.get("reissue_exhausted"), Some(&1));
    let l = ledger::load(&lake).await.unwrap();
    let f = firms(&l, id).unwrap();
    let status: Vec<&str> = f.iter().map(|x| x.status.as_str()).collect();
    assert_eq!(status, ["paid", "returned", "mismatched"]);
}

fn assessed(uscc: &str, fen: i64, on: &str) -> Decision {
    Decision {
        uscc: uscc.to_owned(),
        name: None,
        qualified_on: NaiveDate::parse_from_str(on, "%Y-%m-%d").unwrap(),
        tier: None,
        amount: Some(super::policy::yuan(fen)),
        rule: None,
        basis: None,
        decided: false,
        evidence: Vec::new(),
    }
}

#[tokio::test]
async fn a_group_pays_only_the_highest_and_a_higher_tier_tops_up() {
    let (_d, lake) = lake();
    issue(&lake, &example("high_tech_first.toml"), "sti")
        .await
        .unwrap();
    issue(&lake, &example("specialised_sme.toml"), "miit")
        .await
        .unwrap();
    // A and B got 200,000 for 高新.
    decided(
        &lake,
        "high-tech-first-2025",
        &[(A, 20_000_000), (B, 20_000_000)],
    )
    .await;
    let l = ledger::load(&lake).await.unwrap();
    let sme = policy_of(&l, "specialised-sme-2025").unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
    // A reaches 小巨人 (500,000): the difference; B a provincial level (100,000): nothing
    // more; C, outside the group's payments, its full amount.
    let r = settle(
        &sme,
        day,
        vec![
            assessed(A, 50_000_000, "2025-03-01"),
            assessed(B, 10_000_000, "2025-04-01"),
            assessed(C, 10_000_000, "2025-05-01"),
        ],
        &l,
    );
    let got: Vec<(&str, Option<&str>, Option<&str>)> = r
        .eligible
        .iter()
        .map(|d| (d.uscc.as_str(), d.amount.as_deref(), d.basis.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (A, Some("300000.00"), Some("highest_only_top_up")),
            (C, Some("100000.00"), Some("eligible")),
        ]
    );
    assert_eq!(r.excluded[0].rule.as_deref(), Some("highest_only"));
    assert_eq!(r.total, "400000.00");
    // The next year's policy of the same kind tops up what this one paid.
    let next = example("specialised_sme.toml")
        .replace("2025", "2026")
        .replace("group = \"tech-recognition\"\n", "");
    let next_p = RewardPolicy::parse(&next).unwrap();
    let mut next_as_same = next_p.clone();
    next_as_same.id = sme.id.clone();
    decided(&lake, "specialised-sme-2025", &[(C, 10_000_000)]).await;
    let l = ledger::load(&lake).await.unwrap();
    let r = settle(
        &next_as_same,
        day,
        vec![assessed(C, 50_000_000, "2026-02-01")],
        &l,
    );
    assert_eq!(r.eligible[0].amount.as_deref(), Some("400000.00"));
    assert_eq!(r.eligible[0].basis.as_deref(), Some("top_up"));
    let r = settle(
        &next_as_same,
        day,
        vec![assessed(C, 10_000_000, "2026-02-01")],
        &l,
    );
    assert_eq!(r.excluded[0].rule.as_deref(), Some("tier_already_paid"));
}
