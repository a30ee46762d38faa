// Registration tokens (PROTOCOL.md §5.5).
// Writing functions must run inside RegistryDb.tx.

import type { RegistryDb } from "./db.ts";

/** A stored token row. */
export interface TokenRow {
  token: string;
  email: string;
  prefix_len: number;
  date: number;
}

/** `addToken` with a token that already exists (HTTP 409). */
export class TokenExistsError extends Error {
  override name = "TokenExistsError";
}

/** 8 distinct lower-case letters in random order (§5.5), from `random` (uniform in [0,1)). */
export function randomToken(random: () => number = cryptoRandom): string {
  const letters = [..."abcdefghijklmnopqrstuvwxyz"];
  let out = "";
  for (let i = 0; i < 8; i++) out += letters.splice(Math.floor(random() * letters.length), 1)[0];
  return out;
}

/** Uniform number in [0, 1) from the platform CSPRNG. */
export function cryptoRandom(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] / 2 ** 32;
}

/** Stores `token` (or a fresh random one when null) for `email`; returns the token. */
export function insertToken(
  db: RegistryDb,
  token: string | null,
  email: string,
  prefixLen: number,
  nowS: number,
  random: () => number = cryptoRandom,
): string {
  const exists = db.prepare("SELECT 1 FROM token WHERE token = ?");
  if (token === null) {
    do token = randomToken(random); while (exists.get(token) !== undefined);
  } else if (exists.get(token) !== undefined) {
    throw new TokenExistsError(`Token already exists`);
  }
  db.prepare("INSERT INTO token VALUES (?, ?, ?, ?)").run(
    token,
    email,
    prefixLen,
    Math.floor(nowS),
  );
  return token;
}

/** The row of `token`, if stored. */
export function findToken(db: RegistryDb, token: string): TokenRow | undefined {
  const row = db.prepare("SELECT token, email, prefix_len, date FROM token WHERE token = ?")
    .get(token) as TokenRow | undefined;
  return row && { ...row };
}

/** Deletes `token`; true when it existed. */
export function deleteToken(db: RegistryDb, token: string): boolean {
  return Number(db.prepare("DELETE FROM token WHERE token = ?").run(token).changes) > 0;
}

/** Deletes tokens created at or before `limitS` (§5.7 step 1); returns how many. */
export function expireTokens(db: RegistryDb, limitS: number): number {
  return Number(db.prepare("DELETE FROM token WHERE date <= ?").run(limitS).changes);
}

/** Creation time of the oldest token, or null when there is none. */
export function oldestTokenDate(db: RegistryDb): number | null {
  const row = db.prepare("SELECT min(date) AS d FROM token").get() as { d: number | null };
  return row.d;
}
