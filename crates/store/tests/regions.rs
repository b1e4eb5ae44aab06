//! The conformance suite on a store routing between two regions, each its own SQLite
//! file. The suite's leads name no EU country, so they live in the default region, whose
//! file the raw tests read; every call still goes through the router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use leadflow_testkit::conformance::{Raw, TestStore};

async fn fresh() -> TestStore {
    let dir = tempfile::tempdir().expect("a temp dir");
    let eu = dir.path().join("eu.db");
    let us = dir.path().join("us.db");
    let text = format!(
        "[[regions]]\nname = \"eu\"\ndatabase = \"sqlite://{}\"\ncountries = [\"EU\"]\n\
         [[regions]]\nname = \"us\"\ndatabase = \"sqlite://{}\"\ndefault = true\n",
        eu.display(),
        us.display()
    );
    let config = leadflow_core::config::parse(&text).expect("parses");
    let store = leadflow_store::regions::connect(&config.regions, Default::default(), None).await.expect("opens");
    TestStore { store, guard: Box::new(dir), raw: Raw::Sqlite(us) }
}

leadflow_testkit::conformance_suite!(fresh());

mod routing {
    use leadflow_core::capture::RawSubmission;
    use leadflow_core::config::{Picklists, SourceConfig};
    use leadflow_core::pipeline::prepare;
    use leadflow_core::{LeadId, SourceName};
    use leadflow_store::{CaptureItem, Captured, DynStore};
    use leadflow_testkit::conformance::{Raw, stored_text};
    use serde_json::{Value, json};

    fn submission(v: Value) -> RawSubmission {
        let Value::Object(payload) = v else { panic!("an object") };
        RawSubmission::new(SourceName::api(), None, payload)
    }

    fn item(submission: RawSubmission) -> CaptureItem {
        let candidate = prepare(&submission.payload, &SourceConfig::api(), &Picklists::default()).unwrap();
        CaptureItem { submission, candidate }
    }

    fn lead_of(c: &Captured) -> LeadId {
        match c {
            Captured::Settled { lead, .. } => lead.id,
            other => panic!("{other:?}"),
        }
    }

    async fn regions(eu: &str, us: &str) -> DynStore {
        let text = format!(
            "[[regions]]\nname = \"eu\"\ndatabase = \"{eu}\"\ncountries = [\"EU\"]\n\
             [[regions]]\nname = \"us\"\ndatabase = \"{us}\"\ndefault = true\n"
        );
        let config = leadflow_core::config::parse(&text).unwrap();
        leadflow_store::regions::connect(&config.regions, Default::default(), None).await.unwrap()
    }

    /// Where each region's data lies.
    fn raw(store: &DynStore, dir: &std::path::Path, pg: &str) -> Vec<(String, Raw)> {
        store
            .regions()
            .into_iter()
            .map(|(name, _)| {
                let raw = if name == "eu" { Raw::Postgres(pg.to_owned()) } else { Raw::Sqlite(dir.join("us.db")) };
                (name, raw)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_waiting_submission_settles_in_its_persons_region_and_leaves_no_copy() {
        let dir = tempfile::tempdir().unwrap();
        let eu = format!("sqlite://{}", dir.path().join("eu.db").display());
        let us = format!("sqlite://{}", dir.path().join("us.db").display());
        let store = regions(&eu, &us).await;
        // Waiting for its batch, nothing read from it yet: the default region keeps it.
        let waiting = submission(json!({"email": "ines@example.pt", "country": "PT"}));
        store.enqueue(vec![waiting.clone()]).await.unwrap();
        let (_, us_store) = store.regions().into_iter().find(|(n, _)| n == "us").unwrap();
        assert_eq!(us_store.list_pending(None, None, 10).await.unwrap().len(), 1);

        let pending = store.pending_submissions(10).await.unwrap();
        assert_eq!(pending.len(), 1);
        let captured = store.capture(vec![item(pending[0].clone())]).await.unwrap();
        let id = lead_of(&captured[0]);
        let (_, eu_store) = store.regions().into_iter().find(|(n, _)| n == "eu").unwrap();
        assert!(eu_store.get_lead(id).await.unwrap().is_some(), "settled where the person lives");
        assert!(us_store.list_pending(None, None, 10).await.unwrap().is_empty(), "the waiting copy is gone");
        assert!(us_store.get_submission(waiting.id).await.unwrap().is_none());
        assert!(store.pending_submissions(10).await.unwrap().is_empty());
    }

    /// One region on PostgreSQL, the other on SQLite: the router does not care which.
    #[tokio::test]
    async fn regions_may_mix_backends_and_keep_their_people_apart() {
        let db = leadflow_testkit::postgres::TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let us = format!("sqlite://{}", dir.path().join("us.db").display());
        let store = regions(&db.url, &us).await;
        let c = store
            .capture(vec![
                item(submission(
                    json!({"email": "jules.marchand@exemple.fr", "last_name": "Marchand", "country": "FR"}),
                )),
                item(submission(json!({"email": "pat@example.com", "last_name": "Okafor", "country": "US"}))),
            ])
            .await
            .unwrap();
        let (fr, us_lead) = (lead_of(&c[0]), lead_of(&c[1]));
        assert_eq!(store.count_leads().await.unwrap(), 2);
        assert_eq!(store.get_lead(fr).await.unwrap().unwrap().fields.last_name.as_deref(), Some("Marchand"));
        assert_eq!(store.list_leads(None, 10).await.unwrap().iter().map(|l| l.id).collect::<Vec<_>>(), {
            let mut ids = vec![fr, us_lead];
            ids.sort();
            ids
        });
        for (name, raw) in raw(&store, dir.path(), &db.url) {
            let text = stored_text(&raw).await;
            let holds = |s: &str| text.iter().any(|(_, _, v)| v.contains(s));
            assert_eq!(holds("Marchand"), name == "eu", "{name}");
            assert_eq!(holds("Okafor"), name == "us", "{name}");
        }
        store.close().await.unwrap();
    }
}
