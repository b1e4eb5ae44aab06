//! A plain runner for the fuzz targets, for stable Rust without libFuzzer: each target's
//! body runs over its seed corpus (`corpus/<target>/`), every saved crash
//! (`artifacts/<target>/`, `regressions/<target>/`) and `LEADFLOW_FUZZ_ITERS` (default
//! 3000) inputs from a deterministic mutator seeded with the corpus.
//!
//! `cargo test --release` inside `fuzz/`. A failing input is printed and written to the
//! system temp directory as `leadflow-fuzz-<target>-<n>`.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

type Target = fn(&[u8]);

/// Tokens the mutator splices in: JSON, TOML and phone/country syntax.
const TOKENS: &[&str] = &[
    "{", "}", "[", "]", "\"", ":", ",", "null", "true", "false", "0", "-1", "1e308", "\\u0000", "\\ud800",
    "\"email\":", "\"phone\":", "\"country\":", "\"state\":", "\"first_name\":", "\"full_name\":",
    "\"employee_count\":", "\"consent\":{\"granted\":true}", "\"custom\":{}", "[[sources]]\n", "[sources.mapping]\n",
    "[server]\n", "[[regions]]\n", "countries = [\"EU\"]\n", "default = true\n", "name = ", " = ", "\"", "'", "'''", "\"\"\"", "\n", "\r\n", "#", ".", "x", "ext. ", ";ext=", "tel:",
    "+", "+1 ", "+44 ", "00", "011 ", "(", ")", "-", " ", "\t", "é", "ß", "İ", "\u{0660}", "\u{FF10}", "🇩🇪", "🇺🇸",
    "United States", "Georgia", "Korea", "UK", "calif.", "N.S.W.", "Québec", "US-CA", "%%\n", "join", "separator",
    "ignore", "synonyms", "contact.email", "a[0]", "a[-1]", "\"a.b\"", "<", ">", "</", "/>", "&amp;", "&#x41;",
    "<![CDATA[", "\"conversation\":", "\"messages\":", "\"author\":\"visitor\"", "<br>", "<script>", "&nbsp;", "]]>", "<!DOCTYPE x>", "<Notification>", "<sObject>", "\"propertyName\":", "\"objectId\":",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = if seeds.is_empty() || rng.below(8) == 0 {
        (0..rng.below(64)).map(|_| rng.next() as u8).collect()
    } else {
        seeds[rng.below(seeds.len())].clone()
    };
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 | 3 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            4 if !v.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            5 if !v.is_empty() => {
                let start = rng.below(v.len());
                let end = (start + 1 + rng.below(32)).min(v.len());
                let chunk = v[start..end].to_vec();
                v.splice(at..at, chunk);
            }
            6 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn run(name: &str, target: Target, seed: u64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = files(&root.join("corpus").join(name));
    assert!(!corpus.is_empty(), "no seed corpus for {name}");
    let mut inputs: Vec<Vec<u8>> = corpus.clone();
    inputs.extend(files(&root.join("artifacts").join(name)));
    inputs.extend(files(&root.join("regressions").join(name)));
    let iters: usize = std::env::var("LEADFLOW_FUZZ_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let mut rng = Rng(seed | 1);
    inputs.extend((0..iters).map(|_| mutate(&mut rng, &corpus)));

    let mut failures = Vec::new();
    for input in &inputs {
        if panic::catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            let path = std::env::temp_dir().join(format!("leadflow-fuzz-{name}-{}", failures.len()));
            let _ = std::fs::write(&path, input);
            eprintln!("{name}: FAILING INPUT {:?} (saved to {})", String::from_utf8_lossy(input), path.display());
            failures.push(path);
            if failures.len() >= 10 {
                break;
            }
        }
    }
    eprintln!("{name}: {} inputs ({} seeds), {} failing", inputs.len(), corpus.len(), failures.len());
    assert!(failures.is_empty(), "{name}: {} failing inputs: {failures:?}", failures.len());
}

#[test]
fn lead_payload() {
    run("lead_payload", leadflow_fuzz::lead_payload, 0x1ead);
}

#[test]
fn config() {
    run("config", leadflow_fuzz::config, 0xc0f1);
}

#[test]
fn phone() {
    run("phone", leadflow_fuzz::phone, 0x9407e);
}

#[test]
fn country() {
    run("country", leadflow_fuzz::country, 0xc0c0);
}

#[test]
fn mapping() {
    run("mapping", leadflow_fuzz::mapping, 0x3a9);
}

#[test]
fn channels() {
    run("channels", leadflow_fuzz::channels, 0xc4a7);
}

#[test]
fn conversation() {
    run("conversation", leadflow_fuzz::conversation, 0xc0de);
}

#[test]
fn email() {
    run("email", leadflow_fuzz::email, 0xe4a1);
}

#[test]
fn signed_json() {
    run("signed_json", leadflow_fuzz::signed_json, 0x5163);
}

#[test]
fn feedback() {
    run("feedback", leadflow_fuzz::feedback, 0xfeed);
}

#[cfg(feature = "app")]
#[test]
fn csv_sniff() {
    run("csv_sniff", leadflow_fuzz::csv_sniff, 0xc5f);
}
