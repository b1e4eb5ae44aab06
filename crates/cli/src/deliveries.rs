//! `leadflow deliveries`: the dead letters (and deliveries waiting for data) from the
//! command line — list, show with every try, replay one or in bulk. A running server
//! picks replayed deliveries up on its next look at the outbox.

use crate::{DataArgs, Failure};
use clap::Subcommand;
use leadflow_app::audit::{self, Action, CLI, NewEntry};
use leadflow_store::{DeliveryStatus, ReplayFilter};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand)]
pub(crate) enum DeliveriesCommand {
    /// List deliveries in a status (default: the dead letters), oldest first.
    List {
        #[command(flatten)]
        data: DataArgs,
        /// dead, needs_data, blocked_consent, pending or delivered.
        #[arg(long, default_value = "dead")]
        status: String,
        #[arg(long)]
        destination: Option<String>,
    },
    /// Show one delivery: the lead sent, the last response and every try.
    Show {
        #[command(flatten)]
        data: DataArgs,
        id: String,
    },
    /// Send dead letters again with a fresh schedule and the same idempotency key: the
    /// ones given, or all of them (of --destination, created in [--from, --to)).
    Replay {
        #[command(flatten)]
        data: DataArgs,
        ids: Vec<String>,
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[arg(long)]
        destination: Option<String>,
        /// RFC 3339, e.g. 2026-01-31T00:00:00Z.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    /// Send every lead created in [--from, --to) to a destination as it stands now, through
    /// the outbox (`lead.backfilled` deliveries, retried and dead-lettered like any other):
    /// to fill a destination added later, or one that lost data.
    Backfill {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        destination: String,
        /// RFC 3339; default: from the first lead.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339, not included; default: up to now.
        #[arg(long)]
        to: Option<String>,
        /// Queue every lead again, even those sent before and unchanged since (for a
        /// destination that lost data). Without it, a run queues only leads not yet sent
        /// as they now stand.
        #[arg(long)]
        resend: bool,
    },
}

fn store_failure(e: leadflow_store::StoreError) -> Failure {
    Failure::Store(e.to_string())
}

fn time_arg(name: &str, value: Option<String>) -> Result<Option<OffsetDateTime>, Failure> {
    value
        .map(|v| {
            OffsetDateTime::parse(&v, &Rfc3339)
                .map_err(|_| Failure::Runtime(format!("--{name} must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z")))
        })
        .transpose()
}

pub(crate) async fn run(action: DeliveriesCommand) -> Result<(), Failure> {
    match action {
        DeliveriesCommand::List { data, status, destination } => {
            let status = DeliveryStatus::parse(&status).ok_or_else(|| {
                Failure::Runtime("--status must be dead, needs_data, blocked_consent, pending or delivered".into())
            })?;
            let (store, _) = crate::open(&data).await?;
            let mut after = None;
            loop {
                let page =
                    store.list_deliveries(status, destination.clone(), after, 500).await.map_err(store_failure)?;
                let Some(last) = page.last() else { break };
                after = Some(last.id.clone());
                for d in page {
                    let why = d.last_error.as_deref().unwrap_or("");
                    let code = d.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                    println!(
                        "{}  {}  {}  {}  tries={}  {code}  {why}",
                        d.id, d.destination, d.event_type, d.lead_id, d.attempts
                    );
                }
            }
            store.close().await.map_err(store_failure)
        }
        DeliveriesCommand::Show { data, id } => {
            let (store, _) = crate::open(&data).await?;
            let found = store.get_delivery(&id).await.map_err(store_failure);
            store.close().await.map_err(store_failure)?;
            let (d, attempts) = found?.ok_or_else(|| Failure::Runtime(format!("no delivery has the id {id}")))?;
            let shown = serde_json::json!({
                "id": d.id,
                "destination": d.destination,
                "lead_id": d.lead_id,
                "event_type": d.event_type,
                "status": d.status.as_str(),
                "attempts": d.attempts,
                "last_status": d.last_status,
                "last_error": d.last_error,
                "last_response": d.last_response,
                "payload": d.payload,
                "attempts_made": attempts,
            });
            println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
            Ok(())
        }
        DeliveriesCommand::Replay { data, ids, all, destination, from, to } => {
            if ids.is_empty() && !all {
                return Err(Failure::Runtime("name delivery ids, or --all".into()));
            }
            let filter = ReplayFilter { destination, from: time_arg("from", from)?, to: time_arg("to", to)? };
            let (store, _) = crate::open(&data).await?;
            let now = OffsetDateTime::now_utc();
            let result = async {
                if all {
                    let replayed = store.replay_deliveries(filter.clone(), now).await?;
                    let base = NewEntry::new(CLI, Action::DeliveriesReplayed, "");
                    crate::audit::note(&store, vec![audit::replayed_many(base, &filter, replayed)]).await;
                    return Ok(replayed);
                }
                let mut n = 0;
                for id in &ids {
                    match store.replay_delivery(id, now).await? {
                        Some(d) if d.status == DeliveryStatus::Pending => {
                            let base = NewEntry::new(CLI, Action::DeliveryReplayed, id);
                            crate::audit::note(&store, vec![audit::replayed_one(base, &d)]).await;
                            n += 1;
                        }
                        Some(d) => eprintln!("{id}: {} (not replayed)", d.status.as_str()),
                        None => eprintln!("{id}: no such delivery"),
                    }
                }
                Ok(n)
            }
            .await;
            store.close().await.map_err(store_failure)?;
            println!("replayed {}", result.map_err(store_failure)?);
            Ok(())
        }
        DeliveriesCommand::Backfill { data, destination, from, to, resend } => {
            let (from, to) = (time_arg("from", from)?, time_arg("to", to)?);
            let (store, config) = crate::open(&data).await?;
            let result = leadflow_app::deliveries::backfill(&store, &config, &destination, from, to, resend).await;
            if let Ok(queued) = &result {
                let detail = serde_json::json!({
                    "destination": destination,
                    "from": from.and_then(|t| t.format(&Rfc3339).ok()),
                    "to": to.and_then(|t| t.format(&Rfc3339).ok()),
                    "resend": resend,
                    "queued": queued,
                });
                let entry = NewEntry::new(CLI, Action::DeliveriesBackfilled, &destination).detail(detail);
                crate::audit::note(&store, vec![entry]).await;
            }
            store.close().await.map_err(store_failure)?;
            let queued = result.map_err(|e| match e {
                leadflow_app::AppError::Invalid(errors) => {
                    Failure::Runtime(errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))
                }
                other => Failure::Store(other.to_string()),
            })?;
            println!("queued {queued}");
            Ok(())
        }
    }
}
