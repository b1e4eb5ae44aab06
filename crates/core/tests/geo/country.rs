//! Accuracy on a realistic messy test set (`tests/data/country_cases.tsv`):
//! at least 99 % correct and zero wrong codes. A "wrong code" is a returned
//! code that differs from the expected one, or any code where the input
//! must stay unknown.
use leadflow_core::geo::{CountryCode, country};

#[derive(Default)]
struct Stats {
    total: usize,
    correct: usize,
    wrong: Vec<String>,
    missed: Vec<String>,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.total += other.total;
        self.correct += other.correct;
        self.wrong.extend(other.wrong.iter().cloned());
        self.missed.extend(other.missed.iter().cloned());
    }

    fn report(&self, label: &str) -> f64 {
        let pct = 100.0 * self.correct as f64 / self.total.max(1) as f64;
        println!(
            "{label}: {}/{} correct = {pct:.2} %, {} wrong, {} missed",
            self.correct,
            self.total,
            self.wrong.len(),
            self.missed.len()
        );
        for m in self.missed.iter().chain(&self.wrong) {
            println!("    {m}");
        }
        pct
    }
}

#[test]
fn messy_country_inputs() {
    let text = include_str!("data/country_cases.tsv");
    let mut sections: Vec<(String, Stats)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(c) = line.strip_prefix("# ----") {
            sections.push((c.trim().to_string(), Stats::default()));
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((_, st)) = sections.last_mut() else {
            panic!("line {}: case before the first section", n + 1);
        };
        let Some((input, expected)) = line.rsplit_once('\t') else {
            panic!("line {}: no tab", n + 1);
        };
        let expected = expected.trim();
        let want = if expected.is_empty() {
            None
        } else {
            Some(CountryCode::parse_code(expected).unwrap_or_else(|| panic!("line {}: bad code {expected:?}", n + 1)))
        };
        let got = country(input);
        st.total += 1;
        if got == want {
            st.correct += 1;
        } else if got.is_some() {
            st.wrong.push(format!("line {}: {input:?} -> {got:?}, want {want:?}", n + 1));
        } else {
            st.missed.push(format!("line {}: {input:?} -> None, want {want:?}", n + 1));
        }
    }
    let mut all = Stats::default();
    let mut messy = Stats::default();
    for (label, st) in &sections {
        st.report(label);
        if !label.starts_with("every ISO") && !label.starts_with("every alpha") {
            messy.add(st);
        }
        all.add(st);
    }
    let messy_pct = messy.report("ALL MESSY (hand-written sections)");
    let pct = all.report("WHOLE FILE");
    assert!(all.wrong.is_empty(), "wrong codes: {:#?}", all.wrong);
    assert!(messy_pct >= 99.0, "messy accuracy {messy_pct:.2} % < 99 %");
    assert!(pct >= 99.0, "accuracy {pct:.2} % < 99 %");
    assert!(messy.total >= 600, "messy set too small: {}", messy.total);
}
