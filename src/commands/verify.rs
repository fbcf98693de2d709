//! `gdx verify property-certificate`: a yes/no check through a running exchange.
//!
//! Data flow: flags (or `GDX_*` variables; the key best from `GDX_KEY`) → one
//! `POST /v1/verify/property-certificate` with the caller's key, purpose and case → `match`
//! (exit 0) or `no_match` (exit 1) on stdout; a refusal prints the exchange's error code and
//! message on stderr (exit 2). The exchange normalises, authorises, rate-limits and audits;
//! nothing is decided here.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::VerifyCertificateArgs;

pub(crate) fn property_certificate(a: VerifyCertificateArgs) -> anyhow::Result<ExitCode> {
    let mut body = serde_json::Map::new();
    for (name, value) in [
        ("certificate_no", &a.certificate_no),
        ("owner_id", &a.owner_id),
        ("owner_name", &a.owner_name),
        ("contract_no", &a.contract_no),
        ("address", &a.address),
        ("area_m2", &a.area_m2),
    ] {
        if let Some(v) = value {
            body.insert(name.to_owned(), serde_json::Value::String(v.clone()));
        }
    }
    let url = format!(
        "{}/v1/verify/property-certificate",
        a.exchange.trim_end_matches('/')
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, text) = rt.block_on(async {
        let mut req = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&a.key)
            .header("x-purpose", &a.purpose)
            .header("x-case-id", &a.case_id)
            .header("content-type", "application/json")
            .body(serde_json::Value::Object(body).to_string());
        if let Some(u) = &a.end_user {
            req = req.header("x-end-user", u);
        }
        let resp = req.send().await.with_context(|| format!("calling {url}"))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the answer")?;
        anyhow::Ok((status, text))
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status.is_success() {
        let result = json["result"].as_str().unwrap_or_default();
        anyhow::ensure!(
            result == "match" || result == "no_match",
            "the exchange answered {status} without a result"
        );
        println!("{result}");
        return Ok(ExitCode::from(if result == "match" { 0 } else { 1 }));
    }
    let e = &json["error"];
    eprintln!(
        "error: {} {}: {}",
        status.as_u16(),
        e["code"].as_str().unwrap_or("unknown"),
        e["message"]
            .as_str()
            .or(e["id"]
                .as_str()
                .map(|_| "server error (see the exchange's log)"))
            .unwrap_or("no message")
    );
    Ok(ExitCode::from(2))
}
