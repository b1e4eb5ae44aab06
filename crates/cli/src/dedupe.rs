//! `leadflow dedupe`: a batch search for duplicates among stored leads, for data that came
//! in before the rules (or while fuzzy matching was off), or after a rule change; and
//! `leadflow dedupe --train`, which learns the matching weights from the stored leads.

use crate::{DataArgs, Failure};
use leadflow_app::audit::{Action, CLI, NewEntry};
use leadflow_app::{merges, weights};
use leadflow_core::matching::{Origin, Trained};
use leadflow_core::resolve::{FoundPair, Verdict};

fn explain(p: &FoundPair) -> String {
    let score = p.explanation.score.map(|s| format!(", score {s:.1}")).unwrap_or_default();
    let rule =
        serde_json::to_value(p.explanation.rule).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    format!("{} ~ {} ({rule}{score})", p.newer, p.older)
}

pub async fn run(data: &DataArgs, dry_run: bool) -> Result<(), Failure> {
    let app = crate::open_app(data).await?;
    weights::load(&app).await.map_err(|e| Failure::Store(e.to_string()))?;
    let (mut merged, mut queued) = (0usize, 0usize);
    let mut merges_done = Vec::new();
    let result = merges::dedupe(&app, dry_run, |pair| {
        let verb = match (pair.verdict, dry_run) {
            (Verdict::Merge, true) => "would merge",
            (Verdict::Merge, false) => "merged",
            (_, true) => "would queue for review",
            (_, false) => "queued for review",
        };
        if pair.verdict == Verdict::Merge {
            merged += 1;
            if !dry_run {
                let detail = serde_json::json!({"absorbed": pair.newer.to_string(), "via": "dedupe"});
                merges_done.push(NewEntry::new(CLI, Action::LeadMerged, pair.older.to_string()).detail(detail));
            }
        } else {
            queued += 1;
        }
        println!("{verb}: {}", explain(&pair));
    })
    .await;
    crate::audit::note(&app.store, merges_done).await;
    app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    let searched = result.map_err(|e| Failure::Store(e.to_string()))?;
    let tense = if dry_run { "would be" } else { "were" };
    println!(
        "{searched} leads searched: {merged} duplicates {tense} merged, {queued} possible duplicates {tense} queued for review"
    );
    Ok(())
}

pub async fn train(data: &DataArgs) -> Result<(), Failure> {
    let app = crate::open_app(data).await?;
    let result = weights::train(&app).await;
    app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    let trained = result.map_err(|e| Failure::Store(e.to_string()))?;
    print!("{}", describe(&trained));
    Ok(())
}

/// The learned weights as a table, and how the training went.
fn describe(t: &Trained) -> String {
    let r = &t.report;
    let mut out = format!(
        "trained on {} leads: {} random pairs for u, {} candidate pairs for m ({})\n",
        t.leads,
        r.random_pairs,
        r.candidate_pairs,
        if r.converged { "EM converged" } else { "EM did not converge everywhere" }
    );
    for pass in &r.passes {
        out.push_str(&format!(
            "  EM over pairs sharing {}: {} pairs, {} iterations, {:.4} of them matches\n",
            pass.keys.join(", "),
            pass.pairs,
            pass.iterations,
            pass.lambda
        ));
    }
    out.push_str(&format!("{:<12} {:<20} {:>10} {:>10} {:>8}  from\n", "field", "level", "m", "u", "bits"));
    for l in &t.levels {
        let origin = |o: Origin| match o {
            Origin::Learned => "learned",
            Origin::TooRare => "configured (too rare to learn)",
            Origin::Ordering => "configured (learned order implausible)",
            Origin::Sign => "configured (learned sign implausible)",
        };
        out.push_str(&format!(
            "{:<12} {:<20} {:>10.6} {:>10.6} {:>+8.2}  m {}, u {}\n",
            format!("{:?}", l.field),
            format!("{:?}", l.level),
            l.m,
            l.u,
            l.weight,
            origin(l.m_origin),
            origin(l.u_origin)
        ));
    }
    out
}
