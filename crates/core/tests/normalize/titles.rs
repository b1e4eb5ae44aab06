//! Labelled accuracy check for `classify_title` against tests/data/titles.tsv.

use leadflow_core::normalize::{Department, Seniority, classify_title};

fn seniority(s: &str) -> Option<Seniority> {
    match s {
        "c_level" => Some(Seniority::CLevel),
        "vp" => Some(Seniority::Vp),
        "director" => Some(Seniority::Director),
        "manager" => Some(Seniority::Manager),
        "individual" => Some(Seniority::Individual),
        "-" => None,
        other => panic!("unknown seniority label {other:?}"),
    }
}

fn department(s: &str) -> Option<Department> {
    if s == "-" {
        return None;
    }
    let quoted = format!("\"{s}\"");
    Some(serde_json::from_str(&quoted).unwrap_or_else(|e| panic!("unknown department {s:?}: {e}")))
}

#[test]
fn labelled_titles_accuracy() {
    let data = include_str!("data/titles.tsv");
    let mut total = 0usize;
    let mut correct = 0usize;
    let mut misses = Vec::new();
    for line in data.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "bad line {line:?}");
        let expected = (seniority(cols[1]), department(cols[2]));
        let got = classify_title(cols[0]);
        total += 1;
        if (got.seniority, got.department) == expected {
            correct += 1;
        } else {
            misses.push(format!(
                "  {:?}: expected {:?}/{:?}, got {:?}/{:?}",
                cols[0], expected.0, expected.1, got.seniority, got.department
            ));
        }
    }
    let accuracy = correct as f64 / total as f64;
    println!("titles: {correct}/{total} correct ({:.1}%)", accuracy * 100.0);
    for m in &misses {
        println!("{m}");
    }
    assert!(total >= 150, "need at least 150 labelled titles, have {total}");
    assert!(accuracy >= 0.95, "accuracy {accuracy:.3} < 0.95; misses:\n{}", misses.join("\n"));
}
