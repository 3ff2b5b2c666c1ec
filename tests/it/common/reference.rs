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

/// RFC 9162 §2.1.4.1 `PROOF(m, D[n])` over leaf hashes, by SUBPROOF's recursion.
pub fn consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if complete { vec![] } else { vec![mth(leaves)] };
        }
        let k = split(n);
        if m <= k {
            let mut p = subproof(m, &leaves[..k], complete);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(mth(&leaves[..k]));
            p
        }
    }
    subproof(m, leaves, true)
}

/// What a witness that follows C2SP tlog-witness's `add-checkpoint` to the letter answers: the
/// HTTP status for `request` from a witness trusting the log key `log_vkey` whose latest
/// cosigned checkpoint of that log is `latest` (size, root). Written from the text, in its
/// order, sharing no code with the crate.
pub fn witness_status(request: &str, log_vkey: &str, latest: Option<(u64, Hash)>) -> u16 {
    // "The request body MUST be a sequence of an old size line, zero or more consistency proof
    // lines, and an empty line, followed by a checkpoint."
    let Some((head, note)) = request.split_once("\n\n") else {
        return 400;
    };
    let mut lines = head.split('\n');
    let old = match lines.next().and_then(|l| l.strip_prefix("old ")) {
        Some(n) if n == "0" || (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())) => {
            match n.parse::<u64>() {
                Ok(n) => n,
                Err(_) => return 400,
            }
        }
        _ => return 400,
    };
    let mut proof = Vec::new();
    for line in lines {
        match B64.decode(line).ok().and_then(|h| <Hash>::try_from(h).ok()) {
            Some(h) => proof.push(h),
            None => return 400,
        }
    }
    let mut parts = log_vkey.splitn(3, '+');
    let (name, key) = (parts.next().unwrap(), parts.nth(1).unwrap());
    let key = B64.decode(key).unwrap();
    let id = Sha256::new()
        .chain_update(name)
        .chain_update([b'\n', 1])
        .chain_update(&key[1..])
        .finalize();
    let Some(at) = note.rfind("\n\n") else {
        return 400;
    };
    let (body, sigs) = (&note[..at + 1], &note[at + 2..]);
    let mut body_lines = body.lines();
    let (origin, size, root) = (body_lines.next(), body_lines.next(), body_lines.next());
    // "If the checkpoint origin is unknown, the witness MUST respond with a "404 Not Found"".
    if origin != Some(name) {
        return 404;
    }
    let (Some(size), Some(root)) = (
        size.and_then(|s| s.parse::<u64>().ok()),
        root.and_then(|r| B64.decode(r).ok())
            .and_then(|r| <Hash>::try_from(r).ok()),
    ) else {
        return 400;
    };
    // "… "403 Forbidden" HTTP status code if none of the signatures verify against a trusted
    // public key" — and signed-note: a known key's line that fails rejects the whole note.
    let vk = VerifyingKey::from_bytes(key[1..].try_into().unwrap()).unwrap();
    let mut verified = false;
    for line in sigs.lines() {
        let Some(blob) = line
            .strip_prefix(&format!("\u{2014} {name} "))
            .and_then(|b| B64.decode(b).ok())
        else {
            continue;
        };
        if blob.len() < 4 || blob[..4] != id[..4] {
            continue;
        }
        let ok = blob.len() == 68
            && vk
                .verify(body.as_bytes(), &Signature::from_slice(&blob[4..]).unwrap())
                .is_ok();
        if !ok {
            return 403;
        }
        verified = true;
    }
    if !verified {
        return 403;
    }
    // "The old size MUST be equal to or lower than the checkpoint size. Otherwise, the witness
    // MUST respond with a "400 Bad Request""
    if old > size {
        return 400;
    }
    // "… the old size matches the size of the latest checkpoint … If it doesn't match, the
    // witness MUST respond with a "409 Conflict""
    let (latest_size, latest_root) = latest.unwrap_or((0, mth(&[])));
    if old != latest_size {
        return 409;
    }
    // "A checkpoint of size zero MUST have the root hash of the empty tree … "422""
    if size == 0 && root != mth(&[]) {
        return 422;
    }
    // "If the old size is zero, the consistency proof MUST be empty" / the proof must verify /
    // same size: "the witness MUST check that the root hashes are also identical" — each "422".
    if old == 0 {
        return if proof.is_empty() { 200 } else { 422 };
    }
    if old == size {
        return if proof.is_empty() && root == latest_root {
            200
        } else {
            422
        };
    }
    if consistent(old, size, &latest_root, &root, &proof) {
        200
    } else {
        422
    }
}
