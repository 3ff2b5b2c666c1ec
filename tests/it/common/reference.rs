//! An independent verifier written in the tests from RFC 9162 §2.1 and the C2SP signed-note /
//! tlog-checkpoint texts, sharing no code with the crate: what a regulator's implementer would
//! write with only the published verifier key. Recursive where the crate is iterative.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(data)
        .finalize()
        .into()
}

pub fn node(l: &Hash, r: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(l)
        .chain_update(r)
        .finalize()
        .into()
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) over leaf hashes.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest(b"").into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]).
pub fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() == 1 {
        return vec![];
    }
    let k = split(leaves.len());
    let (mut p, other) = if m < k {
        (path(m, &leaves[..k]), mth(&leaves[k..]))
    } else {
        (path(m - k, &leaves[k..]), mth(&leaves[..k]))
    };
    p.push(other);
    p
}

/// The root an inclusion path leads to, or None if its length does not fit the tree shape.
pub fn root_from_inclusion(leaf: Hash, m: u64, n: u64, path: &[Hash]) -> Option<Hash> {
    if m >= n {
        return None;
    }
    if n == 1 {
        return path.is_empty().then_some(leaf);
    }
    let (last, rest) = path.split_last()?;
    let k = split(n as usize) as u64;
    if m < k {
        Some(node(&root_from_inclusion(leaf, m, k, rest)?, last))
    } else {
        Some(node(last, &root_from_inclusion(leaf, m - k, n - k, rest)?))
    }
}

/// Checks a consistency proof by replaying SUBPROOF's recursion backwards.
pub fn consistent(m: u64, n: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    fn roots(
        m: u64,
        n: u64,
        complete: bool,
        proof: &[Hash],
        old_root: &Hash,
    ) -> Option<(Hash, Hash)> {
        if m == n {
            return if complete {
                proof.is_empty().then_some((*old_root, *old_root))
            } else {
                (proof.len() == 1).then_some((proof[0], proof[0]))
            };
        }
        let (last, rest) = proof.split_last()?;
        let k = split(n as usize) as u64;
        if m <= k {
            let (old, new) = roots(m, k, complete, rest, old_root)?;
            Some((old, node(&new, last)))
        } else {
            let (old, new) = roots(m - k, n - k, false, rest, old_root)?;
            Some((node(last, &old), node(last, &new)))
        }
    }
    if m == 0 || m > n {
        return false;
    }
    roots(m, n, true, proof, old_root).is_some_and(|(o, nw)| o == *old_root && nw == *new_root)
}

/// A checkpoint whose signature verified: origin, size, root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Verifies a signed checkpoint note with a verifier key `<name>+<hex id>+<base64(0x01||key)>`.
pub fn verify_checkpoint(note: &str, vkey: &str) -> Result<Verified, String> {
    let mut parts = vkey.trim().splitn(3, '+');
    let (name, id_hex, key_b64) = (
        parts.next().unwrap(),
        parts.next().ok_or("vkey")?,
        parts.next().ok_or("vkey")?,
    );
    let key = B64.decode(key_b64).map_err(|e| e.to_string())?;
    if key.len() != 33 || key[0] != 1 {
        return Err("not an Ed25519 vkey".into());
    }
    let id = Sha256::new()
        .chain_update(name)
        .chain_update([b'\n', 1])
        .chain_update(&key[1..])
        .finalize();
    let id_expected: String = id[..4].iter().map(|b| format!("{b:02x}")).collect();
    if id_expected != id_hex {
        return Err("vkey id mismatch".into());
    }
    let vk = VerifyingKey::from_bytes(key[1..].try_into().unwrap()).map_err(|e| e.to_string())?;
    let at = note.rfind("\n\n").ok_or("no signature block")?;
    let (text, sigs) = (&note[..at + 1], &note[at + 2..]);
    let signed = sigs.lines().any(|line| {
        let Some(rest) = line.strip_prefix(&format!("\u{2014} {name} ")) else {
            return false;
        };
        let Ok(blob) = B64.decode(rest) else {
            return false;
        };
        blob.len() == 68
            && blob[..4] == id[..4]
            && vk
                .verify(text.as_bytes(), &Signature::from_slice(&blob[4..]).unwrap())
                .is_ok()
    });
    if !signed {
        return Err("no valid signature".into());
    }
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 3 {
        return Err("checkpoint too short".into());
    }
    let root: Hash = B64
        .decode(lines[2])
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "root length")?;
    Ok(Verified {
        origin: lines[0].to_string(),
        size: lines[1].parse().map_err(|_| "size")?,
        root,
    })
}

/// Splits a C2SP entry bundle into its entries.
pub fn entries(bundle: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bundle;
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        out.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    assert!(rest.is_empty(), "trailing bytes in an entry bundle");
    out
}

/// The time of a valid C2SP cosignature line by the witness `vkey` on `note`, written from
/// tlog-cosignature: key id `SHA-256(name ‖ "\n" ‖ type ‖ key)[:4]`, blob `id ‖ u64be(time) ‖
/// sig`; for Ed25519 (type 0x04) the message `"cosignature/v1\ntime <t>\n" ‖ body`, for
/// ML-DSA-44 (type 0x06) the `cosigned_message` struct.
pub fn cosigned_at(note: &str, vkey: &str) -> Option<u64> {
    let mut parts = vkey.trim().splitn(3, '+');
    let (name, _, key_b64) = (parts.next()?, parts.next()?, parts.next()?);
    let key = B64.decode(key_b64).ok()?;
    let (kind, key) = key.split_first()?;
    let id = Sha256::new()
        .chain_update(name)
        .chain_update([b'\n', *kind])
        .chain_update(key)
        .finalize();
    let at = note.rfind("\n\n")?;
    let (body, sigs) = (&note[..at + 1], &note[at + 2..]);
    sigs.lines().find_map(|line| {
        let blob = B64
            .decode(line.strip_prefix(&format!("\u{2014} {name} "))?)
            .ok()?;
        if blob.len() < 12 || blob[..4] != id[..4] {
            return None;
        }
        let time = u64::from_be_bytes(blob[4..12].try_into().ok()?);
        let ok = match *kind {
            4 => {
                let vk = VerifyingKey::from_bytes(key.try_into().ok()?).ok()?;
                let message = format!("cosignature/v1\ntime {time}\n{body}");
                vk.verify(
                    message.as_bytes(),
                    &Signature::from_slice(&blob[12..]).ok()?,
                )
                .is_ok()
            }
            6 => {
                use ml_dsa::{EncodedVerifyingKey, MlDsa44};
                let mut lines = body.lines();
                let (origin, size, root) = (lines.next()?, lines.next()?, lines.next()?);
                let mut m = b"subtree/v1\n\0".to_vec();
                m.push(name.len() as u8);
                m.extend_from_slice(name.as_bytes());
                m.extend_from_slice(&time.to_be_bytes());
                m.push(origin.len() as u8);
                m.extend_from_slice(origin.as_bytes());
                m.extend_from_slice(&[0; 8]);
                m.extend_from_slice(&size.parse::<u64>().ok()?.to_be_bytes());
                m.extend_from_slice(&B64.decode(root).ok()?);
                let vk = ml_dsa::VerifyingKey::<MlDsa44>::decode(
                    &EncodedVerifyingKey::<MlDsa44>::try_from(key).ok()?,
                );
                let sig = ml_dsa::Signature::<MlDsa44>::try_from(&blob[12..]).ok()?;
                vk.verify_with_context(&m, b"", &sig)
            }
            _ => false,
        };
        ok.then_some(time)
    })
}
