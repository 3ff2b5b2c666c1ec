//! C2SP `tlog-policy`: which logs a verifier accepts, which witnesses it knows, and the quorum of
//! cosignatures a checkpoint needs (`log`, `witness`, `group`, `quorum` lines). Parsing and
//! evaluation only; the verifier (`evidence::verify`) applies it to a bundle's checkpoint.

use std::collections::{HashMap, HashSet};

use super::cosign::CosignatureVerifier;
use super::note::NoteVerifier;

/// A parsed policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The accepted logs' keys (may be empty: the log is known from elsewhere).
    pub logs: Vec<NoteVerifier>,
    witnesses: Vec<(String, CosignatureVerifier)>,
    groups: HashMap<String, (usize, Vec<String>)>,
    quorum: String,
}

/// The result of checking a checkpoint's cosignatures against a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumResult {
    /// Whether the quorum holds.
    pub satisfied: bool,
    /// The policy's names of the witnesses whose cosignatures verified.
    pub cosigned_by: Vec<String>,
}

/// A group line's threshold and members: each member a witness or group defined above, once;
/// the threshold `all`, `any` or 1..=members (no leading zero).
fn group(
    threshold: &str,
    members: &[&str],
    defined: &dyn Fn(&str) -> bool,
) -> Result<(usize, Vec<String>), String> {
    let mut seen = HashSet::new();
    for m in members {
        if *m == "none" || !defined(m) {
            return Err(format!("{m:?} is not a witness or group defined above"));
        }
        if !seen.insert(*m) {
            return Err(format!("{m:?} is listed twice"));
        }
    }
    let k = match threshold {
        "all" => members.len(),
        "any" => 1,
        k => k
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=members.len()).contains(k) && !threshold.starts_with('0'))
            .ok_or_else(|| format!("threshold {k:?} is not all, any or 1..={}", members.len()))?,
    };
    Ok((k, members.iter().map(|m| m.to_string()).collect()))
}

impl Policy {
    /// Parses a policy file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut logs: Vec<NoteVerifier> = Vec::new();
        let mut witnesses: Vec<(String, CosignatureVerifier)> = Vec::new();
        let mut groups: HashMap<String, (usize, Vec<String>)> = HashMap::new();
        let mut quorum = None;
        for (n, raw) in text.split('\n').enumerate() {
            let at = |m: String| format!("policy line {}: {m}", n + 1);
            if raw.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                return Err(at("control characters other than tab".into()));
            }
            let words: Vec<&str> = raw.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let defined = |name: &str| {
                name == "none"
                    || witnesses.iter().any(|(w, _)| w == name)
                    || groups.contains_key(name)
            };
            match words.as_slice() {
                [] => {}
                [first, ..] if first.starts_with('#') => {}
                ["log", vkey] | ["log", vkey, _] => {
                    let log = NoteVerifier::parse(vkey).map_err(|e| at(e.to_string()))?;
                    if logs.iter().any(|l| l.public_key() == log.public_key()) {
                        return Err(at("the same log key twice".into()));
                    }
                    logs.push(log);
                }
                ["witness", name, vkey] | ["witness", name, vkey, _] => {
                    if defined(name) {
                        return Err(at(format!("{name:?} is already defined")));
                    }
                    let w = CosignatureVerifier::parse(vkey).map_err(|e| at(e.to_string()))?;
                    if witnesses
                        .iter()
                        .any(|(_, v)| v.public_key() == w.public_key())
                    {
                        return Err(at("the same witness key twice".into()));
                    }
                    witnesses.push((name.to_string(), w));
                }
                ["group", name, threshold, members @ ..] if !members.is_empty() => {
                    if defined(name) {
                        return Err(at(format!("{name:?} is already defined")));
                    }
                    let group = group(threshold, members, &defined).map_err(at)?;
                    groups.insert(name.to_string(), group);
                }
                ["quorum", name] => {
                    if quorum.is_some() {
                        return Err(at("a second quorum line".into()));
                    }
                    if !defined(name) {
                        return Err(at(format!("{name:?} is not defined above")));
                    }
                    quorum = Some(name.to_string());
                }
                _ => {
                    return Err(at(format!(
                        "not a log, witness, group or quorum line: {:?}",
                        raw.trim()
                    )))
                }
            }
        }
        Ok(Self {
            logs,
            witnesses,
            groups,
            quorum: quorum.ok_or("the policy has no quorum line")?,
        })
    }

    /// Whether `note` (a checkpoint with its cosignature lines) satisfies the quorum.
    pub fn quorum(&self, note: &str) -> QuorumResult {
        let cosigned_by: Vec<String> = self
            .cosigned_times(note)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let satisfied = self.witnessed(&self.quorum, &cosigned_by);
        QuorumResult {
            satisfied,
            cosigned_by,
        }
    }

    /// The policy's witnesses whose cosignatures on `note` verify, each with its cosignature's
    /// time (Unix seconds), in policy order.
    pub fn cosigned_times(&self, note: &str) -> Vec<(String, u64)> {
        self.witnesses
            .iter()
            .filter_map(|(name, w)| Some((name.clone(), w.cosigned_at(note)?)))
            .collect()
    }

    fn witnessed(&self, name: &str, cosigned_by: &[String]) -> bool {
        if name == "none" {
            return true;
        }
        match self.groups.get(name) {
            Some((k, members)) => {
                members
                    .iter()
                    .filter(|m| self.witnessed(m, cosigned_by))
                    .count()
                    >= *k
            }
            None => cosigned_by.iter().any(|c| c == name),
        }
    }

    /// A one-line description of the quorum, for reports.
    pub fn describe(&self) -> String {
        match self.groups.get(&self.quorum) {
            Some((k, members)) => format!("{k} of {}", members.join(", ")),
            None => self.quorum.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosign::Cosigner;
    use crate::note::NoteSigner;

    #[test]
    fn quorums_nest_and_count_each_witness_once() {
        let log = NoteSigner::new("example.jp/log", &[3; 32]).unwrap();
        let body = "example.jp/log\n9\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let note = log.sign(body).unwrap();
        let w: Vec<Cosigner> = (0..4)
            .map(|i| Cosigner::generate(&format!("w{i}.example")).unwrap())
            .collect();
        let policy = Policy::parse(&format!(
            "# regulators and an industry body\n\
             log {}\n\
             witness A {}\n  witness B {} https://b.example/\n\
             witness C\t{}\n\
             witness D {}\n\
             group AB 2 A B\n\
             group CD any C D\n\
             group all-of all AB CD\n\
             quorum all-of\n",
            log.verifier_key(),
            w[0].vkey(),
            w[1].vkey(),
            w[2].vkey(),
            w[3].vkey()
        ))
        .unwrap();
        let with = |signers: &[usize]| {
            let mut n = note.clone();
            for &i in signers {
                n.push_str(&w[i].cosign(body, 1).unwrap());
            }
            n
        };
        assert!(!policy.quorum(&with(&[])).satisfied);
        assert!(!policy.quorum(&with(&[0, 1])).satisfied);
        assert!(!policy.quorum(&with(&[0, 2, 3])).satisfied);
        let ok = policy.quorum(&with(&[0, 1, 3]));
        assert!(ok.satisfied);
        assert_eq!(ok.cosigned_by, ["A", "B", "D"]);
        assert_eq!(policy.describe(), "2 of AB, CD");
        assert!(
            Policy::parse("quorum none\n")
                .unwrap()
                .quorum(&note)
                .satisfied
        );
    }

    #[test]
    fn malformed_policies_are_refused() {
        let w = Cosigner::generate("w.example").unwrap().vkey();
        for bad in [
            String::new(),
            "quorum X\n".to_string(),
            format!("witness A {w}\nwitness B {w}\nquorum A\n"),
            format!("witness A {w}\ngroup G 2 A\nquorum G\n"),
            format!("witness A {w}\ngroup G 0 A\nquorum G\n"),
            format!("witness A {w}\ngroup G any A A\nquorum G\n"),
            format!("witness A {w}\nquorum A\nquorum A\n"),
            format!("witness A {w}\ngroup G any none\nquorum G\n"),
            format!("witness A {w}\nfrobnicate\nquorum A\n"),
        ] {
            assert!(Policy::parse(&bad).is_err(), "{bad}");
        }
    }
}
