//! The configuration examples in the crate documentation parse.

use leadflow_core::scoring::{LifecycleContract, ScoringConfig};

fn toml_blocks() -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in include_str!("../../../src/scoring.rs").lines().filter_map(|l| l.strip_prefix("//!")) {
        let line = line.strip_prefix(' ').unwrap_or(line);
        match (&mut current, line) {
            (None, "```toml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_documented_examples_parse() {
    let blocks = toml_blocks();
    assert_eq!(blocks.len(), 2);
    let scoring = ScoringConfig::parse(&blocks[0]).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(scoring.rules.len(), 5);
    assert_eq!(scoring.gate.len(), 3);
    LifecycleContract::parse(&blocks[1]).unwrap_or_else(|e| panic!("{e:#?}"));
}
