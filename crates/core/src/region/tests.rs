use super::*;
use crate::config;

const TWO: &str = r#"
[[sources]]
name = "dach-webinar"
adapter = "json"

[[regions]]
name = "eu"
database = "sqlite:///var/lib/leadflow/eu.db"
countries = ["EU", "CH", "GB"]

[[regions]]
name = "us"
database = "sqlite:///var/lib/leadflow/us.db"
sources = ["dach-webinar"]
default = true
"#;

fn regions(text: &str) -> Regions {
    match config::parse(text) {
        Ok(c) => c.regions,
        Err(e) => panic!("{e:?}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match config::parse(text) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn eu_means_the_eu_and_eea_members() {
    let r = regions(TWO);
    let eu = &r.list()[0];
    assert_eq!(eu.name, "eu");
    for c in ["DE", "FR", "IE", "NO", "IS", "LI", "CH", "GB"] {
        assert!(eu.countries.contains(c), "{c}");
    }
    assert!(!eu.countries.contains("US"));
    assert_eq!(eu.countries.len(), 32);
    assert_eq!(r.list()[1].database.url, "sqlite:///var/lib/leadflow/us.db");
}

#[test]
fn country_first_then_source_then_default() {
    let r = regions(TWO);
    assert_eq!(r.assign(Some("DE"), "api"), 0);
    assert_eq!(r.assign(Some("US"), "api"), 1);
    assert_eq!(r.assign(None, "api"), 1);
    // A German visitor on a source pinned to the US region still lives in the EU.
    assert_eq!(r.assign(Some("DE"), "dach-webinar"), 0);
    assert_eq!(r.assign(None, "dach-webinar"), 1);
    assert_eq!(r.default_index(), 1);
}

#[test]
fn a_source_pins_its_leads_without_a_country() {
    let text = TWO
        .replace("sources = [\"dach-webinar\"]\n", "")
        .replace("countries = [\"EU\", \"CH\", \"GB\"]", "countries = [\"EU\"]\nsources = [\"dach-webinar\"]");
    let r = regions(&text);
    assert_eq!(r.assign(None, "dach-webinar"), 0);
    assert_eq!(r.assign(Some("US"), "dach-webinar"), 0);
    assert_eq!(r.assign(None, "api"), 1);
}

#[test]
fn no_regions_is_one_database() {
    assert!(regions("").is_empty());
}

#[test]
fn each_mistake_is_named() {
    let no_default = TWO.replace("default = true", "");
    assert!(errors(&no_default).iter().any(|e| e.contains("default = true")), "{:?}", errors(&no_default));
    let two_defaults = TWO.replace("countries = [\"EU\", \"CH\", \"GB\"]", "countries = [\"EU\"]\ndefault = true");
    assert!(errors(&two_defaults).iter().any(|e| e.contains("only one region")));
    let bad_country = TWO.replace("\"CH\"", "\"Switzerland\"");
    assert!(errors(&bad_country).iter().any(|e| e.contains("regions[0].countries") && e.contains("Switzerland")));
    let twice = TWO.replace("sources = [\"dach-webinar\"]", "countries = [\"DE\"]");
    assert!(errors(&twice).iter().any(|e| e.contains("DE is already in region \"eu\"")));
    let unknown_source = TWO.replace("sources = [\"dach-webinar\"]", "sources = [\"nope\"]");
    assert!(errors(&unknown_source).iter().any(|e| e.contains("\"nope\" is not a configured source")));
    let same_db = TWO.replace("us.db", "eu.db");
    assert!(errors(&same_db).iter().any(|e| e.contains("another region already uses this database")));
    let no_db = TWO.replace("database = \"sqlite:///var/lib/leadflow/us.db\"\n", "");
    assert!(errors(&no_db).iter().any(|e| e.contains("regions[1]") && e.contains("needs a database")));
    let bad_name = TWO.replace("name = \"us\"", "name = \"U S\"");
    assert!(errors(&bad_name).iter().any(|e| e.contains("regions[1].name")));
    let both = format!("[database]\nurl = \"sqlite://x.db\"\n{TWO}");
    assert!(errors(&both).iter().any(|e| e.contains("database.url") && e.contains("[[regions]]")));
}
