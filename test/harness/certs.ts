// Certificates for TLS tests, made with Debian's openssl (scripts/ensure-deps installs it):
//
//   const pki = makePki(dir);                       // a CA, and a server certificate for 127.0.0.1
//   const ci = pki.client("ci");                    // { cert, key }, subject "CN=ci,O=Conveyor Test"
//   const old = pki.client("old", { expired: true });
//   const other = makePki(otherDir);                // a second CA nobody trusts
//
// Every key is EC P-256; files are PEM, in `dir`. The server's key store is key + certificate
// in one file (ZooKeeper's PEM key store).

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface CertPair {
  cert: string;
  key: string;
  /** The certificate's subject, as ZooKeeper's x509 provider names the identity ("CN=ci,O=Conveyor Test"). */
  subject: string;
}

export interface Pki {
  dir: string;
  /** The CA certificate (PEM path): the trust store of servers and clients. */
  ca: string;
  /** The server's certificate, for IP 127.0.0.1 and DNS localhost. */
  server: CertPair;
  /** key + certificate in one PEM file (ZooKeeper's ssl.keyStore.location). */
  serverKeyStore: string;
  /** A client certificate with subject CN=<name>,O=Conveyor Test (expired: valid in 2020 only). */
  client(name: string, options?: { expired?: boolean }): CertPair;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.error) throw new Error(`openssl not found (apt-get install -y openssl): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
}

/** A fresh CA in `dir` (created), and a server certificate signed by it. */
export function makePki(dir: string, caName = "Conveyor Test CA"): Pki {
  mkdirSync(dir, { recursive: true });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", `/CN=${caName}`], dir);
  // `openssl ca` (not x509 -req) because it can back-date a certificate (expired ones).
  writeFileSync(join(dir, "index.txt"), "");
  writeFileSync(join(dir, "serial"), "1000\n");
  writeFileSync(
    join(dir, "ca.cnf"),
    [
      "[ca]",
      "default_ca = test",
      "[test]",
      `dir = ${dir}`,
      "database = $dir/index.txt",
      "serial = $dir/serial",
      "new_certs_dir = $dir",
      "certificate = $dir/ca.pem",
      "private_key = $dir/ca.key",
      "default_md = sha256",
      "policy = any",
      "copy_extensions = copy",
      "unique_subject = no",
      "[any]",
      "commonName = supplied",
      "organizationName = optional",
      "",
    ].join("\n"),
  );
  const issue = (name: string, subject: string, san: string, expired = false): CertPair => {
    openssl(["req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject, "-addext", `subjectAltName=${san}`], dir);
    const dates = expired ? ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] : ["-days", "30"];
    // -preserveDN: the request's DN as it is (O, then CN); otherwise `openssl ca` orders it as
    // the policy lists its fields, and the x509 identity ZooKeeper derives would differ.
    openssl(["ca", "-batch", "-config", "ca.cnf", "-preserveDN", "-in", `${name}.csr`, "-out", `${name}.pem`, "-notext", ...dates], dir);
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), subject: subject.slice(1).split("/").reverse().join(",") };
  };
  const server = issue("server", "/CN=zookeeper", "IP:127.0.0.1,DNS:localhost");
  const serverKeyStore = join(dir, "server-keystore.pem");
  writeFileSync(serverKeyStore, readFileSync(server.key, "utf8") + readFileSync(server.cert, "utf8"));
  return {
    dir,
    ca: join(dir, "ca.pem"),
    server,
    serverKeyStore,
    client: (name, options = {}) =>
      issue(`client-${name}${options.expired ? "-expired" : ""}`, `/O=Conveyor Test/CN=${name}`, `DNS:${name}`, options.expired),
  };
}
