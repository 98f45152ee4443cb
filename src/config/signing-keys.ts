import { type KeyObject, createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { constants } from "node:fs";
import { open, rm } from "node:fs/promises";
import { quote } from "../text/printable.ts";
import type { ConfigFile } from "./config-file.ts";
import { UsageError } from "./errors.ts";
import { readSmallFile } from "./small-file.ts";

/**
 * Release signing keys: Ed25519, PEM on disk (PKCS#8 private, SPKI public), named everywhere by
 * a fingerprint — "SHA256:" and the unpadded base64 of the SHA-256 of the raw 32-byte public
 * key, the form OpenSSH prints — so a person can compare what `keygen` printed with what
 * `status` shows and what an agent logs.
 */
export interface SigningKey {
  privateKey: KeyObject;
  /** The raw 32-byte public key, base64: what a signature carries. */
  publicKey: string;
  fingerprint: string;
}

export interface TrustedKey {
  publicKey: string;
  fingerprint: string;
  /** Where it was configured, for messages. */
  source: string;
}

/** The raw public key of an Ed25519 key object, base64 (the JWK "x" is base64url of it). */
export function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: "jwk" });
  return Buffer.from(String(jwk.x ?? ""), "base64url").toString("base64");
}

/** The fingerprint of a raw (base64) Ed25519 public key. */
export function fingerprintOf(publicKey: string): string {
  return `SHA256:${createHash("sha256").update(Buffer.from(publicKey, "base64")).digest("base64").replace(/=+$/, "")}`;
}

/** A public key object from the raw base64 form a signature carries; undefined if not one. */
export function publicKeyObject(publicKey: string): KeyObject | undefined {
  const raw = Buffer.from(publicKey, "base64");
  if (raw.length !== 32 || raw.toString("base64") !== publicKey) return undefined;
  try {
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
  } catch {
    return undefined;
  }
}

/**
 * `keygen --out FILE`: a new key pair, the private key to FILE (mode 0600) and the public key
 * to FILE.pub. Neither may exist already: overwriting a release key would lock every agent
 * that trusts it out of new releases (or hand signing to whoever wrote the file). If the
 * private key cannot be written, the public key just written is removed, so a re-run starts clean.
 */
export async function writeKeyPair(out: string): Promise<{ fingerprint: string; publicPath: string }> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const privatePem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  const publicPem = publicKey.export({ format: "pem", type: "spki" }).toString();
  const publicPath = `${out}.pub`;
  await createExclusive(publicPath, publicPem, 0o644, "--out (public key)");
  try {
    await createExclusive(out, privatePem, 0o600, "--out");
  } catch (error) {
    await rm(publicPath, { force: true });
    throw error;
  }
  return { fingerprint: fingerprintOf(rawPublicKey(publicKey)), publicPath };
}

async function createExclusive(path: string, text: string, mode: number, label: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_EXCL: refuses an existing file, and a symlink planted in its place.
    handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "EEXIST") throw new UsageError(`${label} ${quote(path)} already exists: not overwriting a key (choose another path)`);
    if (code === "ENOENT") throw new UsageError(`${label} ${quote(path)}: the directory does not exist`);
    if (code === "EACCES" || code === "EPERM") throw new UsageError(`${label} ${quote(path)} cannot be written: permission denied`);
    throw new UsageError(`${label} ${quote(path)} cannot be written (${code ?? String(error)})`);
  }
  try {
    await handle.chmod(mode); // the umask must not widen nor narrow it
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}

/** The private key of `--sign-key FILE` (or where `source` says it came from). */
export async function loadSigningKey(path: string, source: string): Promise<SigningKey> {
  const text = (await readSmallFile(path, source)) ?? "";
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(text);
  } catch {
    const hint = text.includes("PUBLIC KEY") ? " (that is a public key: sign with the private one)" : "";
    throw new UsageError(`${source} ${quote(path)} holds no PEM private key${hint}`);
  }
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new UsageError(
      `${source} ${quote(path)} is a ${privateKey.asymmetricKeyType ?? "unknown"} key: release keys are Ed25519 (conveyor keygen)`,
    );
  }
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { privateKey, publicKey, fingerprint: fingerprintOf(publicKey) };
}

/** A public key an agent trusts: a PEM file (`FILE.pub` from keygen; a private key is refused). */
export async function loadTrustedKey(path: string, source: string): Promise<TrustedKey> {
  const text = (await readSmallFile(path, source)) ?? "";
  if (text.includes("PRIVATE KEY")) {
    throw new UsageError(`${source} ${quote(path)} is a private key: agents need only the public one (${path}.pub from conveyor keygen)`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch {
    throw new UsageError(`${source} ${quote(path)} holds no PEM public key (-----BEGIN PUBLIC KEY-----)`);
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw new UsageError(
      `${source} ${quote(path)} is a ${key.asymmetricKeyType ?? "unknown"} key: release keys are Ed25519 (conveyor keygen)`,
    );
  }
  const publicKey = rawPublicKey(key);
  return { publicKey, fingerprint: fingerprintOf(publicKey), source: `${source} ${quote(path)}` };
}

/**
 * The key to sign releases with: `--sign-key FILE` > CONVEYOR_SIGN_KEY (a path) > `signKey` in
 * the config file; undefined: releases go out unsigned.
 */
export async function resolveSigningKey(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  config: ConfigFile,
): Promise<SigningKey | undefined> {
  if (flag !== undefined) return loadSigningKey(flag, "--sign-key");
  const fromEnv = env.CONVEYOR_SIGN_KEY;
  if (fromEnv !== undefined && fromEnv !== "") return loadSigningKey(fromEnv, "CONVEYOR_SIGN_KEY");
  if (config.signKey !== undefined) return loadSigningKey(config.signKey, "signKey in the config file");
  return undefined;
}
