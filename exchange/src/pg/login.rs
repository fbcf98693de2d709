//! Logging in over the PostgreSQL wire protocol: a principal, its API key, a purpose and a case.
//!
//! Data flow: the startup message (user = principal id; purpose and case from
//! `options='-c gdx.purpose=… -c gdx.case=…'`, from startup parameters of those names, or
//! from `application_name='purpose=… case=…'`) → the server asks for a password in clear
//! (over TLS, or on a loopback address only) → the password is the API key: its hash must
//! name an active key of that very principal → the purpose must be registered, the case
//! given, and the principal's role one that queries (casbin) → the connection is registered
//! for cancel requests and answers `AuthenticationOk`. Every attempt is audited (`connect`
//! on `pgwire`, allowed or denied with the real reason; the client hears one answer for a
//! wrong user and a wrong key).

use std::collections::HashMap;
use std::fmt::Debug;

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, PgWireConnectionState, PidSecretKeyGenerator};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::{Connection, Login};
use crate::audit::{Entry, Outcome};
use crate::authz::Action;
use crate::secret::key_hash;

/// Longest purpose, case id or end user accepted (as for the HTTP headers).
const MAX_TEXT: usize = 128;

/// What the client said about its purpose, case and end user.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Stated {
    pub(super) purpose: Option<String>,
    pub(super) case_id: Option<String>,
    pub(super) end_user: Option<String>,
    /// A setting present but unusable (too long, control characters).
    pub(super) bad: Option<&'static str>,
}

impl Stated {
    /// Reads the startup parameters: `options` (`-c gdx.purpose=…`, `--gdx.case=…`), the
    /// parameters themselves (`gdx.purpose`), and `application_name` (`purpose=… case=…`).
    pub(super) fn from_startup(params: &HashMap<String, String>) -> Self {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(options) = params.get("options") {
            let mut words = split_options(options).into_iter();
            while let Some(w) = words.next() {
                let setting = if w == "-c" {
                    words.next()
                } else {
                    w.strip_prefix("-c")
                        .or_else(|| w.strip_prefix("--"))
                        .map(str::to_owned)
                };
                if let Some((k, v)) = setting.as_deref().and_then(|s| s.split_once('=')) {
                    pairs.push((k.to_owned(), v.to_owned()));
                }
            }
        }
        for (k, v) in params {
            if k.starts_with("gdx.") {
                pairs.push((k.clone(), v.clone()));
            }
        }
        if let Some(app) = params.get("application_name") {
            for part in app.split([';', ' ', ',']) {
                if let Some((k, v)) = part.split_once('=') {
                    pairs.push((
                        format!("gdx.{}", k.trim_start_matches("gdx.")),
                        v.to_owned(),
                    ));
                }
            }
        }
        let mut out = Self::default();
        for (k, v) in pairs {
            let (slot, name) = match k.as_str() {
                "gdx.purpose" => (&mut out.purpose, "gdx.purpose"),
                "gdx.case" | "gdx.case_id" => (&mut out.case_id, "gdx.case"),
                "gdx.end_user" => (&mut out.end_user, "gdx.end_user"),
                _ => continue,
            };
            let v = v.trim();
            if v.len() > MAX_TEXT || v.chars().any(char::is_control) {
                out.bad = Some(name);
            } else if !v.is_empty() && slot.is_none() {
                *slot = Some(v.to_owned());
            }
        }
        out
    }
}

/// `options` split as the server splits it: on spaces, `\` escaping the next character.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// A refusal at login: FATAL, so the connection closes.
fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message.into(),
    )))
}

/// Why a login was refused: what the client hears, and what the audit keeps.
struct Refusal {
    code: &'static str,
    told: String,
    reason: String,
}

impl Refusal {
    fn new(code: &'static str, told: impl Into<String>) -> Self {
        let told = told.into();
        Self {
            code,
            reason: told.clone(),
            told,
        }
    }
}

impl Connection {
    /// Checks a login; on success returns who is connected.
    fn check_login(
        &self,
        params: &HashMap<String, String>,
        password: &str,
        entry: &mut Entry,
    ) -> Result<Login, Refusal> {
        let app = &self.shared.app;
        let state = app.store.current();
        let now = chrono::Utc::now();
        let hash = key_hash(password.trim());
        let user = params.get("user").map(String::as_str).unwrap_or_default();
        let wrong = |reason: &str| Refusal {
            code: "28P01",
            told: format!(
                "password authentication failed for user \"{}\": the user is a principal id and the password its API key",
                user.chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect::<String>()
            ),
            reason: reason.to_owned(),
        };
        let principal = match state.principals.by_key_hash(&hash, now) {
            Some(p) if p.id.as_str() == user => p.clone(),
            Some(_) => return Err(wrong("the key of another principal")),
            None => return Err(wrong(state.principals.refusal(&hash, now))),
        };
        entry.principal = principal.id.to_string();
        entry.department = principal.department.to_string();
        entry.role = principal.role.to_string();
        entry.policy_version = state.version.number();
        let stated = Stated::from_startup(params);
        entry.purpose = stated.purpose.clone();
        entry.case_id = stated.case_id.clone();
        entry.end_user = stated.end_user.clone();
        if let Some(name) = stated.bad {
            return Err(Refusal::new(
                "22023",
                format!(
                    "{name} must be text of at most {MAX_TEXT} bytes without control characters"
                ),
            ));
        }
        let Some(purpose) = stated.purpose else {
            return Err(Refusal::new(
                "28000",
                "state the purpose and the case: options='-c gdx.purpose=<registered purpose code> -c gdx.case=<case id>'",
            ));
        };
        if app.purposes.get(&purpose).is_none() {
            return Err(Refusal::new(
                "28000",
                "gdx.purpose is not a registered purpose code (GET /v1/purposes lists them)",
            ));
        }
        let Some(case_id) = stated.case_id else {
            return Err(Refusal::new(
                "28000",
                "name the case the connection is for: options='-c gdx.case=<case or application number>'",
            ));
        };
        if !state
            .authz
            .allows(&principal.id, &principal.department, &Action::Query)
        {
            return Err(Refusal::new(
                "42501",
                "SQL is for analysts, department systems, auditors and the CPO",
            ));
        }
        Ok(Login {
            principal: principal.id.to_string(),
            department: principal.department.to_string(),
            role: principal.role.to_string(),
            key_hash: hash,
            purpose,
            case_id,
            end_user: stated.end_user,
        })
    }

    /// Records a login attempt; a login is refused when its record cannot be written.
    async fn audit_login(&self, mut entry: Entry, refused: Option<&Refusal>) -> PgWireResult<()> {
        match refused {
            None => {
                entry.outcome = Some(Outcome::Allowed);
                entry.status = 200;
                entry.reason = "allowed".into();
            }
            Some(r) => {
                entry.outcome = Some(Outcome::Denied);
                entry.status = 401;
                entry.reason = r.reason.clone();
            }
        }
        let outcome = entry.outcome.unwrap_or(Outcome::Failed).as_str();
        metrics::counter!("gdx_exchange_calls_total", "action" => "pgwire-connect", "outcome" => outcome)
            .increment(1);
        self.shared.app.audit.record(entry).await.map(|_| ()).map_err(|e| {
            metrics::counter!("gdx_exchange_audit_failures_total").increment(1);
            tracing::error!(error = %e, "the audit trail cannot be written; pgwire login refused");
            fatal(
                "58000",
                "the audit trail cannot be written; no data is served without it",
            )
        })
    }
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let pwd = pwd.into_password()?;
                let mut entry = Entry {
                    action: "connect".into(),
                    object: "pgwire".into(),
                    principal: "-".into(),
                    department: "-".into(),
                    role: "-".into(),
                    request_hash: crate::secret::sha256_hex(b"pgwire connect"),
                    ..Entry::default()
                };
                match self.check_login(client.metadata(), &pwd.password, &mut entry) {
                    Ok(login) => {
                        self.audit_login(entry, None).await?;
                        let (pid, secret) = self.shared.pids.generate(client);
                        client.set_pid_and_secret_key(pid, secret.clone());
                        self.logged_in(login, pid, secret);
                        let mut params = DefaultServerParameterProvider::default();
                        params.is_superuser = false;
                        params.default_transaction_read_only = true;
                        finish_authentication(client, &params).await?;
                    }
                    Err(refusal) => {
                        self.audit_login(entry, Some(&refusal)).await?;
                        return Err(fatal(refusal.code, refusal.told));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn purpose_and_case_from_options_parameters_or_application_name() {
        let s = Stated::from_startup(&params(&[(
            "options",
            "-c gdx.purpose=statistics -cgdx.case=C\\ 12 --gdx.end_user=clerk-7",
        )]));
        assert_eq!(s.purpose.as_deref(), Some("statistics"));
        assert_eq!(s.case_id.as_deref(), Some("C 12"));
        assert_eq!(s.end_user.as_deref(), Some("clerk-7"));
        assert_eq!(s.bad, None);

        let s = Stated::from_startup(&params(&[
            ("gdx.purpose", "statistics"),
            ("gdx.case", "A-1"),
        ]));
        assert_eq!(
            (s.purpose.as_deref(), s.case_id.as_deref()),
            (Some("statistics"), Some("A-1"))
        );

        let s = Stated::from_startup(&params(&[(
            "application_name",
            "metabase; purpose=statistics; case=Q4-report",
        )]));
        assert_eq!(
            (s.purpose.as_deref(), s.case_id.as_deref()),
            (Some("statistics"), Some("Q4-report"))
        );

        // Options win over the application name; nothing stated is nothing.
        let s = Stated::from_startup(&params(&[
            ("options", "-c gdx.purpose=a"),
            ("application_name", "purpose=b"),
        ]));
        assert_eq!(s.purpose.as_deref(), Some("a"));
        assert_eq!(
            Stated::from_startup(&params(&[("application_name", "psql")])),
            Stated::default()
        );
    }

    #[test]
    fn unusable_settings_are_named_not_kept() {
        let long = format!("-c gdx.case={}", "x".repeat(MAX_TEXT + 1));
        let s = Stated::from_startup(&params(&[("options", &long)]));
        assert_eq!(s.bad, Some("gdx.case"));
        assert_eq!(s.case_id, None);
        let s = Stated::from_startup(&params(&[("gdx.purpose", "a\u{7}b")]));
        assert_eq!(s.bad, Some("gdx.purpose"));
    }
}
