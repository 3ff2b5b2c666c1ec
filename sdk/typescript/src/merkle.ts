// RFC 9162 §2.1.3.2 and §2.1.4.2: verifying inclusion and consistency proofs, written from the
// RFC's algorithms (sizes as BigInt: trees may outgrow 32-bit arithmetic).

import { equal, Hash, nodeHash } from "./crypto.js";

/** Whether `path` proves `leaf` at `index` in the tree of `size` leaves with `root`. */
export async function verifyInclusion(
  leaf: Hash,
  index: number | bigint,
  size: number | bigint,
  path: Hash[],
  root: Hash,
): Promise<boolean> {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn < 0n || fn > sn) return false;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

/** Whether `proof` shows the tree of `first` leaves (`firstRoot`) is a prefix of `second`'s. */
export async function verifyConsistency(
  first: number | bigint,
  second: number | bigint,
  firstRoot: Hash,
  secondRoot: Hash,
  proof: Hash[],
): Promise<boolean> {
  const m = BigInt(first);
  const n = BigInt(second);
  if (m === 0n || m > n) return false;
  if (m === n) return proof.length === 0 && equal(firstRoot, secondRoot);
  const path = (m & (m - 1n)) === 0n ? [firstRoot, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = m - 1n;
  let sn = n - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return equal(fr, firstRoot) && equal(sr, secondRoot) && sn === 0n;
}
