//! `leadflow keys`: create, list, rotate and revoke API keys. A token is printed once, as
//! the last line of standard output; only its hash is stored.

use crate::{DataArgs, Failure, audit, open};
use clap::Subcommand;
use leadflow_app::audit::{Action, CLI, NewEntry, key_actor};
use leadflow_core::config::parse_duration;
use leadflow_core::keys::{ApiKey, ApiToken, IpRange, Scope};
use serde_json::json;
use time::OffsetDateTime;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; its token is printed once, as the last line of standard output.
    Create {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        name: String,
        /// admin, read, ingest, ingest:SOURCE or feedback; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
        /// The key answers 401 after this long (`90d`, `12h`).
        #[arg(long, value_parser = duration)]
        expires_in: Option<time::Duration>,
        /// Requests accepted per minute; past it, 429 with `Retry-After`.
        #[arg(long)]
        rate_limit_per_minute: Option<u32>,
        /// A client address or network the key is accepted from (`203.0.113.7`,
        /// `10.0.0.0/8`); repeat for several. Without any: every address.
        #[arg(long = "allow-ip")]
        allowed_ips: Vec<IpRange>,
    },
    /// List keys (never their tokens).
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Replace a key with a new token: the new one works at once, the old one until the
    /// grace period ends. The new token is printed as the last line.
    Rotate {
        #[command(flatten)]
        data: DataArgs,
        /// The key's name or id.
        name_or_id: String,
        /// How long the old token keeps working (`24h`; `0s` ends it now).
        #[arg(long, value_parser = duration)]
        grace: time::Duration,
        /// The new key's lifetime; default: as long as the old one was made to last.
        #[arg(long, value_parser = duration)]
        expires_in: Option<time::Duration>,
    },
    /// Revoke the active key with this name or id (during a rotation, both tokens).
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        name_or_id: String,
    },
}

fn duration(text: &str) -> Result<time::Duration, String> {
    parse_duration(text)
        .and_then(|d| time::Duration::try_from(d).ok())
        .ok_or_else(|| format!("{text:?} is not a duration (500ms, 30s, 5m, 12h, 90d)"))
}

fn token() -> Result<ApiToken, Failure> {
    ApiToken::generate().map_err(|e| Failure::Runtime(format!("no randomness available: {e}")))
}

fn print_token(token: &ApiToken) {
    println!("the token is shown only now; store it safely:");
    println!("{}", token.reveal());
}

pub(crate) async fn run(action: KeysCommand) -> Result<(), Failure> {
    match action {
        KeysCommand::Create { data, name, scopes, expires_in, rate_limit_per_minute, allowed_ips } => {
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 100 {
                return Err(Failure::Runtime("a key name is 1 to 100 characters".into()));
            }
            if rate_limit_per_minute == Some(0) {
                return Err(Failure::Runtime("--rate-limit-per-minute must be at least 1".into()));
            }
            let (store, _) = open(&data).await?;
            let token = token()?;
            let now = OffsetDateTime::now_utc();
            let key = ApiKey {
                expires_at: expires_in.map(|d| now + d),
                rate_limit_per_minute,
                allowed_ips,
                ..ApiKey::new(name, &token, scopes, now)
            };
            let created = store.create_key(key.clone(), token.hash()).await;
            if created.is_ok() {
                let scopes: Vec<String> = key.scopes.iter().map(ToString::to_string).collect();
                let mut detail = json!({"name": key.name, "scopes": scopes});
                if let Some(at) = key.expires_at {
                    detail["expires_at"] = json!(rfc3339(at));
                }
                if let Some(rate) = key.rate_limit_per_minute {
                    detail["rate_limit_per_minute"] = json!(rate);
                }
                if !key.allowed_ips.is_empty() {
                    detail["allowed_ips"] = json!(key.allowed_ips);
                }
                audit::note(&store, vec![NewEntry::new(CLI, Action::KeyCreated, key_actor(key.id)).detail(detail)])
                    .await;
            }
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            created.map_err(|e| Failure::Runtime(e.to_string()))?;
            let scopes: Vec<String> = key.scopes.iter().map(ToString::to_string).collect();
            println!("created key {:?} ({}) with scopes {}", key.name, key.id, scopes.join(", "));
            if let Some(at) = key.expires_at {
                println!("it expires at {}", rfc3339(at));
            }
            print_token(&token);
            Ok(())
        }
        KeysCommand::List { data } => {
            let (store, _) = open(&data).await?;
            let keys = store.list_keys().await.map_err(|e| Failure::Store(e.to_string()))?;
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            let now = OffsetDateTime::now_utc();
            println!(
                "{:<36}  {:<20}  {:<12}  {:<8}  {:<20}  {:<20}  SCOPES",
                "ID", "NAME", "PREFIX", "STATUS", "EXPIRES", "LAST USED"
            );
            for k in keys {
                let scopes: Vec<String> = k.scopes.iter().map(ToString::to_string).collect();
                let status = match k.admits(now, None) {
                    _ if k.revoked_at.is_some() => "revoked",
                    Err(leadflow_core::keys::Refusal::Expired) => "expired",
                    _ if k.rotated_at.is_some() => "rotated",
                    _ => "active",
                };
                let time = |t: Option<OffsetDateTime>| t.map_or_else(|| "-".to_owned(), rfc3339);
                println!(
                    "{:<36}  {:<20}  {:<12}  {:<8}  {:<20}  {:<20}  {}",
                    k.id,
                    k.name,
                    k.prefix,
                    status,
                    time(k.expires_at),
                    time(k.last_used_at),
                    scopes.join(",")
                );
            }
            Ok(())
        }
        KeysCommand::Rotate { data, name_or_id, grace, expires_in } => {
            let (store, _) = open(&data).await?;
            let result = rotate(&store, &name_or_id, grace, expires_in).await;
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            let (old, new, token) = result?;
            println!(
                "rotated key {:?}: the old key ({}) works until {}; the new key is {}",
                new.name,
                old.id,
                old.expires_at.map_or_else(|| "-".to_owned(), rfc3339),
                new.id
            );
            print_token(&token);
            Ok(())
        }
        KeysCommand::Revoke { data, name_or_id } => {
            let (store, _) = open(&data).await?;
            let revoked = store.revoke_key(&name_or_id).await;
            if let Ok(Some(k)) = &revoked {
                let detail = json!({"name": k.name});
                audit::note(&store, vec![NewEntry::new(CLI, Action::KeyRevoked, key_actor(k.id)).detail(detail)]).await;
            }
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            match revoked.map_err(|e| Failure::Store(e.to_string()))? {
                Some(k) => {
                    println!("revoked key {:?} ({})", k.name, k.id);
                    Ok(())
                }
                None => Err(Failure::Runtime(format!("no active key is named {name_or_id:?} or has that id"))),
            }
        }
    }
}

/// The active, unrotated key named so, its successor stored and the rotation audited.
async fn rotate(
    store: &leadflow_store::DynStore,
    name_or_id: &str,
    grace: time::Duration,
    expires_in: Option<time::Duration>,
) -> Result<(ApiKey, ApiKey, ApiToken), Failure> {
    let now = OffsetDateTime::now_utc();
    let keys = store.list_keys().await.map_err(|e| Failure::Store(e.to_string()))?;
    let old = keys
        .into_iter()
        .find(|k| {
            (k.name == name_or_id || k.id.to_string() == name_or_id)
                && k.revoked_at.is_none()
                && k.rotated_at.is_none()
                && k.admits(now, None) != Err(leadflow_core::keys::Refusal::Expired)
        })
        .ok_or_else(|| Failure::Runtime(format!("no active key is named {name_or_id:?} or has that id")))?;
    let token = token()?;
    let new = old.successor(&token, now, expires_in);
    let rotated = store
        .rotate_key(old.id, old.grace_end(now, grace), new.clone(), token.hash())
        .await
        .map_err(|e| Failure::Store(e.to_string()))?
        .ok_or_else(|| Failure::Runtime(format!("the key {name_or_id:?} was rotated or revoked meanwhile")))?;
    let detail = json!({"name": new.name, "new_key": new.id.to_string(),
                        "old_key_expires_at": rotated.expires_at.map(rfc3339)});
    audit::note(store, vec![NewEntry::new(CLI, Action::KeyRotated, key_actor(old.id)).detail(detail)]).await;
    Ok((rotated, new, token))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
