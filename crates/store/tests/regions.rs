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
    let store = leadflow_store::regions::connect(&config.regions, Default::default()).await.expect("opens");
    TestStore { store, guard: Box::new(dir), raw: Raw::Sqlite(us) }
}

leadflow_testkit::conformance_suite!(fresh());
