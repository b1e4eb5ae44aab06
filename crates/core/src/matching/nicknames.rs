//! Nickname equivalence from the vendored Apache-2.0 "nicknames" dataset (`data/names.csv`,
//! see `data/PROVENANCE.md`).
//!
//! Every formal name (`name1`) defines a group; the formal name and each of its nicknames belong
//! to it. Two folded first names are *nickname-equivalent* when they share a group: Bob ≡ Robert
//! (nickname of), Bob ≡ Rob (both nicknames of Robert). The relation is deliberately not closed
//! transitively any further, which would join unrelated names through ambiguous nicknames.
//!
//! Two *major* formal names (each the formal name of at least [`MAJOR_FORMAL`] nicknames, e.g.
//! Robert and William) are equivalent only when one is listed in the other's group: the dataset
//! has "reverse" groups such as `bill → robert, william`, which would otherwise make Robert ≡
//! William (two different people at one company merged).
//!
//! [`NicknameGroups`] are the groups a deployment adds (`[matching] nicknames`): the names of one
//! group are equivalent to each other, and to nothing else through it (no closure with the
//! vendored table either). The model carries them and `compare` scores a first-name pair they
//! join as `Nickname`; blocking keys still expand initials through the vendored table only, so
//! such a pair is found through its other keys (email, phone, company, address).

use std::collections::HashMap;
use std::sync::LazyLock;

const NAMES_CSV: &str = include_str!("../../data/matching/names.csv");

/// The parsed nickname table.
#[derive(Debug, Default)]
pub struct NicknameTable {
    /// name → sorted ids of the groups (formal names) it belongs to.
    groups: HashMap<Box<str>, Vec<u32>>,
    /// group id → formal name.
    formal: Vec<Box<str>>,
    /// group id → members (the formal name and its nicknames).
    members: Vec<Vec<Box<str>>>,
    /// name → the other names nickname-equivalent to it (precomputed by `parse`).
    equivalents: HashMap<Box<str>, Vec<Box<str>>>,
}

/// A formal name with at least this many nicknames is "major" (see the module docs).
pub const MAJOR_FORMAL: usize = 6;

static TABLE: LazyLock<NicknameTable> = LazyLock::new(|| NicknameTable::parse(NAMES_CSV));

impl NicknameTable {
    /// The table built from the vendored dataset (parsed once, on first use).
    pub fn global() -> &'static NicknameTable {
        &TABLE
    }

    /// Parses `name1,relationship,name2` lines; malformed lines are skipped.
    pub fn parse(csv: &str) -> NicknameTable {
        let mut table = NicknameTable::default();
        let mut formal_ids: HashMap<Box<str>, u32> = HashMap::new();
        for line in csv.lines().skip(1) {
            let mut cols = line.split(',');
            let (Some(formal), Some(_rel), Some(nick)) = (cols.next(), cols.next(), cols.next()) else {
                continue;
            };
            let formal = crate::matching::text::fold_name(formal);
            let nick = crate::matching::text::fold_name(nick);
            if formal.is_empty() || nick.is_empty() {
                continue;
            }
            let next_id = u32::try_from(table.formal.len()).unwrap_or(u32::MAX);
            let id = *formal_ids.entry(formal.clone().into_boxed_str()).or_insert(next_id);
            if id == next_id {
                table.formal.push(formal.clone().into_boxed_str());
                table.members.push(vec![formal.clone().into_boxed_str()]);
            }
            if let Some(m) = table.members.get_mut(id as usize)
                && !m.iter().any(|x| **x == *nick)
            {
                m.push(nick.clone().into_boxed_str());
            }
            for name in [formal, nick] {
                let ids = table.groups.entry(name.into_boxed_str()).or_default();
                if let Err(pos) = ids.binary_search(&id) {
                    ids.insert(pos, id);
                }
            }
        }
        let names: Vec<Box<str>> = table.groups.keys().cloned().collect();
        for name in names {
            let mut eq: Vec<Box<str>> = Vec::new();
            for &id in table.groups.get(&name).map(Vec::as_slice).unwrap_or_default() {
                for m in table.members.get(id as usize).map(Vec::as_slice).unwrap_or_default() {
                    if *m != name && !eq.contains(m) && table.equivalent_folded(m, &name) {
                        eq.push(m.clone());
                    }
                }
            }
            table.equivalents.insert(name, eq);
        }
        table
    }

    /// Whether two already folded (lowercase ASCII) names are nickname-equivalent. Equal names are
    /// not reported here (the caller checks exact equality first).
    pub fn equivalent_folded(&self, a: &str, b: &str) -> bool {
        let (Some(ga), Some(gb)) = (self.groups.get(a), self.groups.get(b)) else {
            return false;
        };
        let both_major = self.is_major(a) && self.is_major(b);
        // Both lists are short and sorted: merge-intersect.
        let (mut i, mut j) = (0, 0);
        while let (Some(x), Some(y)) = (ga.get(i), gb.get(j)) {
            match x.cmp(y) {
                std::cmp::Ordering::Equal => {
                    let f = self.formal.get(*x as usize).map(|f| &**f);
                    if !both_major || f == Some(a) || f == Some(b) {
                        return true;
                    }
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
            }
        }
        false
    }

    /// Whether a folded name is the formal name of at least [`MAJOR_FORMAL`] nicknames.
    fn is_major(&self, folded: &str) -> bool {
        self.groups.get(folded).is_some_and(|ids| {
            ids.iter().any(|&id| {
                self.formal.get(id as usize).is_some_and(|f| **f == *folded)
                    && self.members.get(id as usize).is_some_and(|m| m.len() > MAJOR_FORMAL)
            })
        })
    }

    /// Names nickname-equivalent to the folded name (itself excluded), e.g. to recognise a typo
    /// in a nickname ("Billl" vs William).
    pub fn equivalents(&self, folded: &str) -> &[Box<str>] {
        self.equivalents.get(folded).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether two first names (any casing/diacritics) are nickname-equivalent or equal.
    pub fn equivalent(&self, a: &str, b: &str) -> bool {
        let (a, b) = (crate::matching::text::fold_name(a), crate::matching::text::fold_name(b));
        !a.is_empty() && (a == b || self.equivalent_folded(&a, &b))
    }

    /// Formal names whose group contains the folded name (e.g. "bill" → robert, william).
    pub fn formal_names<'a>(&'a self, folded: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.groups
            .get(folded)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&id| self.formal.get(id as usize).map(|s| &**s))
    }

    /// Whether the folded name is in the table (as a formal name or a nickname).
    pub fn contains(&self, folded: &str) -> bool {
        self.groups.contains_key(folded)
    }

    /// Number of distinct names in the table.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Configured nickname groups (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NicknameGroups {
    /// Folded name → sorted ids of the groups it is in.
    groups: HashMap<Box<str>, Vec<u32>>,
}

impl NicknameGroups {
    /// Groups of names (any casing or diacritics); names that fold to nothing are skipped.
    pub fn new<'a>(groups: impl IntoIterator<Item = &'a [String]>) -> NicknameGroups {
        let mut out = NicknameGroups::default();
        for (id, group) in groups.into_iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            for name in group {
                let folded = crate::matching::text::fold_name(name);
                if folded.is_empty() {
                    continue;
                }
                let ids = out.groups.entry(folded.into_boxed_str()).or_default();
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
        }
        out
    }

    /// Whether two first names (any casing or diacritics) are in one group.
    pub fn equivalent(&self, a: &str, b: &str) -> bool {
        let (a, b) = (crate::matching::text::fold_name(a), crate::matching::text::fold_name(b));
        match (self.groups.get(a.as_str()), self.groups.get(b.as_str())) {
            (Some(x), Some(y)) => x.iter().any(|id| y.binary_search(id).is_ok()),
            _ => false,
        }
    }

    /// Whether no group is configured.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_examples_are_equivalent() {
        let t = NicknameTable::global();
        for (a, b) in [
            ("Bob", "Robert"),
            ("Bill", "William"),
            ("Peggy", "Margaret"),
            ("Jon", "Jonathan"),
            ("Liz", "Elizabeth"),
            ("Rob", "Bob"),
        ] {
            assert!(t.equivalent(a, b), "{a} ~ {b}");
            assert!(t.equivalent(b, a), "{b} ~ {a}");
        }
        assert!(!t.equivalent("Mark", "Mary"));
        // reverse group `bill → robert, william` does not join two major formal names
        assert!(!t.equivalent("Robert", "William"));
        assert!(t.equivalent("Bill", "Robert"));
        assert!(t.equivalents("william").iter().any(|n| &**n == "billy"));
        assert!(!t.equivalent("John", "Paul"));
        assert!(t.len() > 1000);
        let formal: Vec<&str> = t.formal_names("bill").collect();
        assert!(formal.contains(&"william"));
    }

    #[test]
    fn configured_groups_join_their_names_only() {
        let groups = [vec!["Sasha".to_owned(), "Alexander".to_owned(), "ALEKSANDR".to_owned()], vec!["Bo".to_owned()]];
        let g = NicknameGroups::new(groups.iter().map(Vec::as_slice));
        assert!(g.equivalent("sasha", "Aleksandr") && g.equivalent("Alexander", "Sasha"));
        // Not through the vendored table: Alex is Alexander's nickname there, not Sasha's here.
        assert!(!g.equivalent("Sasha", "Alex"));
        assert!(!g.equivalent("Bo", "Sasha"));
        assert!(!NicknameGroups::default().equivalent("Sasha", "Sasha"));
    }
}
